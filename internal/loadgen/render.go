package loadgen

import (
	"embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/personad/personad/engine"
)

// templates/ holds byte-for-byte copies of fixtures from testdata/events
// (a test keeps them equal; go test -update copies them again).
//
//go:embed templates/*.json
var templateFiles embed.FS

// tmpl holds the fixtures as trees, read once.
var tmpl = loadTemplates()

type templateSet struct {
	inquiry, redacted     object // whole bodies of inquiry.approved and inquiry.redacted
	verification, account object // whole bodies
	report                object
	inquiryTemplate       object // included objects of inquiry.approved
	templateVersion       object
	session               object
}

func loadTemplates() *templateSet {
	read := func(name string) object {
		b, err := templateFiles.ReadFile("templates/" + name)
		if err != nil {
			panic(err)
		}
		v, err := decodeTree(b)
		if err != nil {
			panic(fmt.Sprintf("loadgen: template %s: %v", name, err))
		}
		return v.(object)
	}
	t := &templateSet{
		inquiry:      read("inquiry.approved.json"),
		redacted:     read("inquiry.redacted.json"),
		verification: read("verification.passed.json"),
		account:      read("account.created.json"),
		report:       read("report_watchlist.matched.json"),
	}
	included := payloadOf(t.inquiry).get("included").([]any)
	t.inquiryTemplate, t.templateVersion, t.session = included[0].(object), included[1].(object), included[2].(object)
	return t
}

// payloadOf returns data.attributes.payload of a body.
func payloadOf(body object) object { return body.obj("data").obj("attributes").obj("payload") }

// dataOf returns data.attributes.payload.data of a body.
func dataOf(body object) object { return payloadOf(body).obj("data") }

// envelope renders a body from a template body: the event's id, name and
// created-at, its payload's object and included objects, and a context
// when not nil.
func envelope(body object, eventID, name string, at time.Time, data object, included []any, context object) []byte {
	d := body.obj("data").clone()
	d.set("id", eventID)
	attrs := d.obj("attributes").clone()
	attrs.set("created-at", stamp(at))
	attrs.set("name", name)
	payload := attrs.obj("payload").clone()
	payload.set("data", data)
	payload.set("included", included)
	attrs.set("payload", payload)
	if context != nil {
		attrs.set("context", context)
	}
	d.set("attributes", attrs)
	return appendJSON(make([]byte, 0, 6<<10), object{{"data", d}})
}

// stamp writes a time as Persona does, or null when zero.
func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(engine.TimeFormat)
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// render returns the body of one planned event.
func render(id *identity, p *planned) []byte {
	s := &p.snap
	switch p.object {
	case objectAccount:
		return envelope(tmpl.account, p.eventID, p.name, p.at, accountObject(id, s.createdAt, p.at), []any{}, nil)
	case objectVerification:
		return envelope(tmpl.verification, p.eventID, p.name, p.at, verificationObject(id, s, eventChecks), []any{}, nil)
	case objectReport:
		return envelope(tmpl.report, p.eventID, p.name, p.at, reportObject(id, p), []any{accountObject(id, s.createdAt, p.at)}, nil)
	}
	body, redacted := tmpl.inquiry, s.redacted
	if redacted {
		body = tmpl.redacted
	}
	var context object
	if p.name == engine.EventUpdatedTags {
		context = object{{"added-tags", strs(s.added)}, {"removed-tags", strs(s.removed)}}
	}
	return envelope(body, p.eventID, p.name, p.at, inquiryObject(dataOf(body), id, p), inquiryIncluded(id, p), context)
}

// timestampKeys are the inquiry's own times, in the order they are written.
var timestampKeys = []string{"created-at", "updated-at", "started-at", "expired-at", "completed-at",
	"failed-at", "marked-for-review-at", "decisioned-at", "redacted-at"}

func isTimestampKey(k string) bool {
	for _, t := range timestampKeys {
		if k == t {
			return true
		}
	}
	return false
}

// inquiryObject renders payload.data of an inquiry event from the
// template's inquiry: the inquiry's identity and its snapshot. A redacted
// snapshot keeps the redacted template's nulled PII.
func inquiryObject(base object, id *identity, p *planned) object {
	s := &p.snap
	times := []time.Time{s.createdAt, s.updatedAt, s.startedAt, s.expiredAt, s.completedAt,
		s.failedAt, s.markedAt, s.decidedAt, s.redactedAt}
	tattrs := base.obj("attributes")
	attrs := make(object, 0, len(tattrs)+4)
	for _, m := range tattrs {
		switch {
		case m.key == "created-at":
			for i, k := range timestampKeys {
				attrs = append(attrs, member{k, stamp(times[i])})
			}
		case isTimestampKey(m.key):
		default:
			attrs = append(attrs, m)
		}
	}
	attrs.set("status", string(s.status))
	attrs.set("reference-id", id.referenceID)
	attrs.set("tags", strs(s.tags))
	attrs.set("previous-step-name", orNull(s.prevStep))
	attrs.set("next-step-name", orNull(s.nextStep))
	if !s.redacted {
		if !s.reviewed {
			attrs.set("note", nil)
		}
		attrs.set("behaviors", behaviors(id, s))
		id.person.setAttributes(&attrs)
		fields := attrs.obj("fields").clone()
		id.person.setFields(&fields)
		attrs.set("fields", fields)
	}

	rels := base.obj("relationships").clone()
	t := templatePool[id.template]
	rels.set("account", object{{"data", ref(id.accountID, "account")}})
	rels.set("inquiry-template", object{{"data", ref(t.id, "inquiry-template")}})
	rels.set("inquiry-template-version", object{{"data", ref(t.versionID, "inquiry-template-version")}})
	if s.reviewed {
		rels.set("reviewer", object{{"data", ref(id.workflowRunID, "workflow-run")}})
	} else {
		rels.set("reviewer", object{})
	}
	sessions := []any{}
	if !s.redacted {
		for i := range s.sessions {
			sessions = append(sessions, ref(id.sessionIDs[i], "inquiry-session"))
		}
	}
	rels.set("sessions", object{{"data", sessions}})
	verifications := []any{}
	for i := range s.verifications {
		verifications = append(verifications, ref(id.verificationIDs[i], objectVerification))
	}
	rels.set("verifications", object{{"data", verifications}})

	o := base.clone()
	o.set("id", id.inquiryID)
	o.set("attributes", attrs)
	o.set("relationships", rels)
	return o
}

// inquiryIncluded returns the included objects of an inquiry event: the
// template and its version, the sessions, and, on the events that carry a
// decision or an outcome, the latest verification (its required checks).
// A redacted inquiry's events include only the template and version, as
// the redacted fixture does.
func inquiryIncluded(id *identity, p *planned) []any {
	s := &p.snap
	inc := append(make([]any, 0, 5), templateIncluded[id.template][:]...)
	if s.redacted {
		return inc
	}
	for i := range s.sessions {
		inc = append(inc, sessionObject(id, s, i))
	}
	switch p.name {
	case engine.EventCompleted, engine.EventFailed, engine.EventMarkedForReview, engine.EventApproved, engine.EventDeclined:
		if s.verifications > 0 {
			inc = append(inc, verificationObject(id, s, includedChecks))
		}
	}
	return inc
}

// How many checks a verification lists: all the template enables in a
// verification event; in an inquiry event's included copy, only the first
// few, to keep bodies near 4 KB.
const (
	eventChecks    = 20
	includedChecks = 2
)

// templateIncluded holds the included inquiry-template and
// inquiry-template-version objects of each template in the pool.
var templateIncluded = func() [][2]any {
	out := make([][2]any, len(templatePool))
	for i, t := range templatePool {
		out[i] = [2]any{
			tmpl.inquiryTemplate.with("id", t.id).with("attributes", tmpl.inquiryTemplate.obj("attributes").with("name", t.name)).
				with("relationships", object{{"latest-published-version", object{{"data", ref(t.versionID, "inquiry-template-version")}}}}),
			tmpl.templateVersion.with("id", t.versionID).with("attributes", tmpl.templateVersion.obj("attributes").with("name-display", t.display)).
				with("relationships", object{{"inquiry-template", object{{"data", ref(t.id, "inquiry-template")}}}}),
		}
	}
	return out
}()

func sessionObject(id *identity, s *snapshot, i int) object {
	tattrs := tmpl.session.obj("attributes")
	attrs := tattrs.clone()
	created, closed := s.createdAt, time.Time{}
	if i == 1 {
		created = s.resumedAt
	}
	open := i == s.sessions-1 && s.sessionOpen
	if !open {
		closed = latest(s.expiredAt, s.completedAt, s.failedAt)
		if i == 0 && s.sessions == 2 {
			closed = s.expiredAt
		}
	}
	status := "active"
	if !open {
		status = "expired"
	}
	attrs.set("status", status)
	attrs.set("created-at", stamp(created))
	attrs.set("started-at", stamp(created.Add(800*time.Millisecond)))
	attrs.set("expired-at", stamp(closed))
	attrs.set("ip-address", id.ip)
	o := tmpl.session.clone()
	o.set("id", id.sessionIDs[i])
	o.set("attributes", attrs)
	o.set("relationships", object{{"inquiry", object{{"data", ref(id.inquiryID, "inquiry")}}}})
	return o
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// govIDChecks are the checks of a government-id verification.
var govIDChecks = []struct{ name, requirement string }{
	{"id_aamva_database_lookup", "not_required"}, {"id_age_comparison", "not_required"},
	{"id_barcode_detection", "not_required"}, {"id_barcode_inconsistency_detection", "not_required"},
	{"id_blur_detection", "required"}, {"id_compromised_detection", "required"},
	{"id_disallowed_country_detection", "required"}, {"id_disallowed_type_detection", "required"},
	{"id_double_side_detection", "not_required"}, {"id_electronic_replica_detection", "required"},
	{"id_entity_detection", "required"}, {"id_expired_detection", "required"},
	{"id_extraction_inconsistency_detection", "required"}, {"id_fabrication_detection", "required"},
	{"id_glare_detection", "required"}, {"id_handwriting_detection", "not_required"},
	{"id_inconsistent_repeat_detection", "required"}, {"id_inquiry_comparison", "required"},
	{"id_mrz_detection", "not_required"}, {"id_mrz_inconsistency_detection", "not_required"},
	{"id_po_box_detection", "not_required"}, {"id_portrait_clarity_detection", "required"},
	{"id_portrait_detection", "required"}, {"id_real_id_detection", "not_required"},
	{"id_repeat_detection", "required"}, {"id_selfie_comparison", "not_required"},
	{"id_tamper_detection", "required"}, {"id_unprocessable_submission_detection", "required"},
	{"id_valid_dates_detection", "required"}, {"id_video_quality_detection", "not_required"},
}

// passedChecks and failedChecks are the checks of a passed and a failed
// verification. A failed one fails its blur and expiry checks.
var passedChecks, failedChecks = checkResults(false), checkResults(true)

func checkResults(failed bool) []any {
	checks := make([]any, 0, len(govIDChecks))
	for _, c := range govIDChecks {
		status, reasons := "passed", []any{}
		if c.requirement == "not_required" && c.name != "id_barcode_detection" {
			status = "not_applicable"
		}
		if failed && (c.name == "id_blur_detection" || c.name == "id_expired_detection") {
			status, reasons = "failed", []any{strings.TrimPrefix(strings.TrimSuffix(c.name, "_detection"), "id_")}
		}
		checks = append(checks, object{{"name", c.name}, {"status", status}, {"reasons", reasons},
			{"requirement", c.requirement}, {"metadata", object{}}})
	}
	return checks
}

// verificationObject renders the inquiry's latest government-id
// verification, listing its first n checks.
func verificationObject(id *identity, s *snapshot, n int) object {
	base := dataOf(tmpl.verification)
	i := max(s.verifications-1, 0)
	done := s.lastVerificationAt
	status, checks := "passed", passedChecks[:n]
	if !s.verificationPassed {
		status, checks = "failed", failedChecks[:n]
	}
	attrs := base.obj("attributes").clone()
	attrs.set("status", status)
	created := done.Add(-90 * time.Second)
	if created.Before(s.startedAt) {
		created = s.startedAt.Add(time.Second)
	}
	attrs.set("created-at", stamp(created))
	attrs.set("submitted-at", stamp(done.Add(-15*time.Second)))
	attrs.set("completed-at", stamp(done))
	attrs.set("checks", checks)
	id.person.setAttributes(&attrs)
	attrs.set("address-subdivision", id.person.subdivisionCode)
	attrs.set("issuing-subdivision", id.person.subdivisionCode)

	t := templatePool[id.template]
	rels := base.obj("relationships").clone()
	rels.set("inquiry", object{{"data", ref(id.inquiryID, "inquiry")}})
	rels.set("inquiry-template-version", object{{"data", ref(t.versionID, "inquiry-template-version")}})
	rels.set("inquiry-template", object{{"data", ref(t.id, "inquiry-template")}})
	rels.set("document", object{{"data", ref(id.documentIDs[i], "document/government-id")}})
	o := base.clone()
	o.set("id", id.verificationIDs[i])
	o.set("attributes", attrs)
	o.set("relationships", rels)
	return o
}

// accountObject renders the inquiry's account with the fields Persona
// fills from a completed government id: name, birthdate, contact, address
// and identification numbers.
func accountObject(id *identity, createdAt, updatedAt time.Time) object {
	base := dataOf(tmpl.account)
	pp := &id.person
	attrs := base.obj("attributes").clone()
	attrs.set("reference-id", id.referenceID)
	attrs.set("created-at", stamp(createdAt))
	attrs.set("updated-at", stamp(updatedAt))
	str := func(v string) object { return object{{"type", "string"}, {"value", v}} }
	file := func(name string, size int) object {
		return object{{"type", "file"}, {"value", object{{"filename", name}, {"byte-size", size},
			{"url", "https://files.withpersona.com/" + id.accountID + "/" + name + "?access_token=" + id.fileToken}}}}
	}
	attrs.set("fields", object{
		{"name", object{{"type", "hash"}, {"value", object{{"first", str(pp.first)}, {"middle", str(pp.middle)}, {"last", str(pp.last)}}}}},
		{"address", object{{"type", "hash"}, {"value", object{
			{"street-1", str(pp.street)}, {"street-2", object{{"type", "string"}, {"value", nil}}}, {"subdivision", str(pp.subdivision)},
			{"city", str(pp.city)}, {"postal-code", str(pp.postal)}, {"country-code", str(pp.country)}}}}},
		{"birthdate", object{{"type", "date"}, {"value", pp.birthdate}}},
		{"email_address", str(pp.email)},
		{"phone_number", str(pp.phone)},
		{"selfie_photo", file("selfie_center.jpg", 48211)},
		{"government_id_front_photo", file("government_id_front.jpg", 182_734)},
		{"identification_numbers", object{{"type", "array"}, {"value", []any{object{{"type", "hash"}, {"value", object{
			{"issuing_country", str(pp.country)}, {"identification_class", str("dl")}, {"identification_number", str(pp.idNumber)}}}}}}}},
	})
	attrs.set("name-first", pp.first)
	attrs.set("name-middle", pp.middle)
	attrs.set("name-last", pp.last)
	attrs.set("birthdate", pp.birthdate)
	attrs.set("email-address", pp.email)
	attrs.set("phone-number", pp.phone)
	attrs.set("country-code", pp.country)
	attrs.set("identification-numbers", object{{"dl", []any{object{{"issuing-country", pp.country},
		{"identification-class", "dl"}, {"identification-number", pp.idNumber},
		{"created-at", stamp(updatedAt)}, {"updated-at", stamp(updatedAt)}}}}})
	o := base.clone()
	o.set("id", id.accountID)
	o.set("attributes", attrs)
	return o
}

// reportObject renders the inquiry's watchlist report; a match lists the
// lists it matched.
func reportObject(id *identity, p *planned) object {
	base := dataOf(tmpl.report)
	pp := &id.person
	matched := p.name == "report/watchlist.matched"
	attrs := base.obj("attributes").clone()
	attrs.set("created-at", stamp(p.at.Add(-15*time.Second)))
	attrs.set("completed-at", stamp(p.at))
	attrs.set("has-match", matched)
	attrs.set("name-first", pp.first)
	attrs.set("name-middle", pp.middle)
	attrs.set("name-last", pp.last)
	attrs.set("term", pp.first+" "+pp.middle+" "+pp.last)
	attrs.set("birthdate", pp.birthdate)
	attrs.set("country-code", pp.country)
	lists := []any{}
	if matched {
		lists = append(lists, object{{"name", "OFAC SDN"}, {"url", "https://sanctionslist.ofac.treas.gov/"}, {"entries", 1}})
	}
	attrs.set("matched-lists", lists)
	rels := base.obj("relationships").clone()
	rels.set("inquiry", object{{"data", ref(id.inquiryID, "inquiry")}})
	rels.set("account", object{{"data", ref(id.accountID, "account")}})
	o := base.clone()
	o.set("id", id.reportID)
	o.set("attributes", attrs)
	o.set("relationships", rels)
	return o
}

// behaviors is what Persona observed while the user filled the flow: empty
// until the inquiry starts.
func behaviors(id *identity, s *snapshot) object {
	if s.startedAt.IsZero() {
		return object{}
	}
	b := &id.behavior
	return object{
		{"request-spoof-attempts", 0}, {"user-agent-spoof-attempts", 0},
		{"distraction-events", b.distractions}, {"hesitation-baseline", 20000},
		{"hesitation-count", b.hesitations}, {"hesitation-time", b.hesitationMs},
		{"shortcut-copies", 0}, {"shortcut-pastes", b.pastes},
		{"autofill-cancels", 0}, {"autofill-starts", b.autofills},
		{"devtools-open", false}, {"completion-time", json.Number(b.completion)},
		{"hesitation-percentage", json.Number(b.hesitationPct)}, {"behavior-threat-level", "low"},
		{"bot-score", b.botScore}, {"mobile-sdk-version-less", nil}, {"debugging-attempt-count", 0},
	}
}

type behavior struct {
	distractions, hesitations, hesitationMs, pastes, autofills, botScore int
	completion, hesitationPct                                            string
}

// person is the made-up individual behind an inquiry.
type person struct {
	first, middle, last, birthdate                    string
	street, city, subdivision, subdivisionCode        string
	postal, country, email, phone, idNumber, ssnumber string
}

// setAttributes writes the person into an object's top-level identity
// attributes that it already has.
func (pp *person) setAttributes(o *object) {
	for _, kv := range pp.attributes() {
		if hasKey(*o, kv[0]) {
			o.set(kv[0], kv[1])
		}
	}
}

// setFields writes the person into an inquiry's fields (values only).
func (pp *person) setFields(fields *object) {
	for _, kv := range pp.attributes() {
		f, ok := fields.get(kv[0]).(object)
		if !ok {
			continue
		}
		fields.set(kv[0], f.with("value", kv[1]))
	}
}

func (pp *person) attributes() [][2]string {
	return [][2]string{
		{"name-first", pp.first}, {"name-middle", pp.middle}, {"name-last", pp.last},
		{"address-street-1", pp.street}, {"address-city", pp.city}, {"address-subdivision", pp.subdivision},
		{"address-postal-code", pp.postal}, {"address-country-code", pp.country}, {"birthdate", pp.birthdate},
		{"email-address", pp.email}, {"phone-number", pp.phone}, {"identification-number", pp.idNumber},
		{"social-security-number", pp.ssnumber},
	}
}

func hasKey(o object, key string) bool {
	for _, m := range o {
		if m.key == key {
			return true
		}
	}
	return false
}

var (
	firstNames  = []string{"Jane", "John", "Maria", "Wei", "Aisha", "Carlos", "Priya", "Liam", "Sofia", "Kenji", "Fatima", "Noah", "Elena", "Omar", "Grace", "Mateo"}
	middleNames = []string{"Marie", "Lee", "Ann", "James", "Rose", "Alexander", "Grace", "Ray"}
	lastNames   = []string{"Doe", "Smith", "Garcia", "Chen", "Okafor", "Rossi", "Patel", "Nguyen", "Kowalski", "Haddad", "Silva", "Tanaka", "Johnson", "Müller"}
	places      = []struct{ street, city, subdivision, code, postal string }{
		{"123 Main St", "San Francisco", "California", "CA", "94111"},
		{"48 Elm Ave", "Austin", "Texas", "TX", "78701"},
		{"9 Harbor Rd", "Seattle", "Washington", "WA", "98101"},
		{"700 Lake Shore Dr", "Chicago", "Illinois", "IL", "60611"},
		{"15 Peachtree St", "Atlanta", "Georgia", "GA", "30303"},
		{"221 Broadway", "New York", "New York", "NY", "10007"},
	}
	templatePool = []struct{ id, versionID, name, display string }{
		{"itmpl_AbN9KvR4LmT2WqYxPdHsZgFc", "itmplv_LqX3jYwK7HnRpZmCvBdF8RtA", "Example KYC Template", "Example KYC Flow"},
		{"itmpl_Qw3RtY7uIo9PaS1dFg5HjK8L", "itmplv_Zx2CvB6nM4qW8eR0tY3uI7oP", "Government ID and Selfie", "Government ID and Selfie v3"},
		{"itmpl_Mn5BvC9xZ1aS7dF3gH6jK2lQ", "itmplv_Pl0OkI9uJ8yH7tG6rF5eD4wS", "Reusable Persona Onboarding", "Reusable Persona v2"},
	}
)

// newIdentity draws an inquiry's ids and its person.
func newIdentity(r *rand.Rand) identity {
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	place := places[r.IntN(len(places))]
	n := r.IntN(1_000_000)
	id := identity{
		inquiryID:       newID(r, "inq_"),
		accountID:       newID(r, "act_"),
		referenceID:     "user-" + strconv.Itoa(n),
		template:        r.IntN(len(templatePool)),
		sessionIDs:      [2]string{newID(r, "iqse_"), newID(r, "iqse_")},
		verificationIDs: [2]string{newID(r, "ver_"), newID(r, "ver_")},
		documentIDs:     [2]string{newID(r, "doc_"), newID(r, "doc_")},
		reportID:        newID(r, "rep_"),
		workflowRunID:   newID(r, "wfr_"),
		ip:              fmt.Sprintf("198.51.100.%d", 1+r.IntN(254)),
		person: person{
			first: first, middle: middleNames[r.IntN(len(middleNames))], last: last,
			birthdate: fmt.Sprintf("%d-%02d-%02d", 1950+r.IntN(55), 1+r.IntN(12), 1+r.IntN(28)),
			street:    place.street, city: place.city, subdivision: place.subdivision, subdivisionCode: place.code,
			postal: place.postal, country: "US",
			email:    strings.ToLower(first+"."+last) + strconv.Itoa(n%1000) + "@example.com",
			phone:    fmt.Sprintf("+1415555%04d", r.IntN(10000)),
			idNumber: fmt.Sprintf("D%07d", r.IntN(10_000_000)),
			ssnumber: fmt.Sprintf("123-45-%04d", r.IntN(10000)),
		},
		behavior: behavior{
			distractions: r.IntN(4), hesitations: r.IntN(6), hesitationMs: 1000 + r.IntN(20000),
			pastes: r.IntN(3), autofills: r.IntN(2), botScore: 1 + r.IntN(5),
			completion:    strconv.FormatFloat(60+r.Float64()*600, 'f', 3, 64),
			hesitationPct: strconv.FormatFloat(r.Float64()*30, 'f', 2, 64),
		},
	}
	return id
}
