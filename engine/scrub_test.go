package engine_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/personad/personad/engine"
)

// fixturePII is every personal value in testdata/events.
var fixturePII = []string{
	"Jane", "Marie", "Doe", "123 Main St", "San Francisco", "94111", "1995-09-08",
	"jane@example.com", "+14155550123", "D1234567", "123-45-6789",
	"called support about her licence", "192.0.2.4", "37.7749", "-122.4194", "vip", "Mozilla/5.0",
}

// scrubs are the three scrubs, with what each keeps of an inquiry beyond
// the allowlist they share.
var scrubs = []struct {
	name             string
	fn               func([]byte) ([]byte, error)
	keepRef, keepTag bool // an inquiry's reference-id, its tags
}{
	{"Scrub", engine.Scrub, true, false},
	{"ScrubAll", engine.ScrubAll, false, false},
	{"ScrubForRetention", engine.ScrubForRetention, true, true},
}

// inflections are Persona's three key inflections; kebab-case is how the
// fixtures are written, so it leaves a body as it is.
var inflections = []struct {
	name string
	key  func(string) string // nil: as written
}{
	{"kebab", nil},
	{"snake", snakeCase},
	{"camel", camelCase},
}

// inflectBody writes body again with its keys put through key, but for the
// keys inside a fields object, which Persona never inflects. A nil key
// leaves body as it is.
func inflectBody(tb testing.TB, body []byte, key func(string) string) []byte {
	tb.Helper()
	if key == nil {
		return body
	}
	d, err := decodeDoc(body)
	if err != nil {
		tb.Fatalf("decoding %.40s: %v", body, err)
	}
	return inflectKeys(d, key).render(func(k string) string { return k }, false)
}

func inflectKeys(d jsonDoc, key func(string) string) jsonDoc {
	out := jsonDoc{kind: d.kind, scalar: d.scalar}
	for _, m := range d.members {
		v := m.value
		if normalizeKey(m.key) != "fields" {
			v = inflectKeys(v, key)
		}
		out.members = append(out.members, jsonMember{key(m.key), v})
	}
	for _, e := range d.elems {
		out.elems = append(out.elems, inflectKeys(e, key))
	}
	return out
}

func mustScrub(tb testing.TB, fn func([]byte) ([]byte, error), body []byte) []byte {
	tb.Helper()
	out, err := fn(body)
	if err != nil {
		tb.Fatalf("scrubbing %.60s: %v", body, err)
	}
	if !json.Valid(out) {
		tb.Fatalf("scrubbed body is not JSON: %s", out)
	}
	return out
}

// event wraps the members of an event's attributes (payload, context) in
// the envelope.
func event(attrs string) string {
	return `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.approved","created-at":"2024-03-15T18:30:00.000Z",` + attrs + `}}}`
}

// TestScrubRules pins each rule on a small body, in the three key
// inflections.
func TestScrubRules(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // of Scrub
		// Of ScrubAll and ScrubForRetention: "" when the same as want.
		wantAll, wantRetention string
	}{{
		name: "report query",
		body: event(`"payload":{"data":{"type":"report/business-lookup","id":"rep_1","attributes":{"status":"ready","query":{"name-first":"Jane","birthdate":"1995-09-08","address-street-1":"123 Main St","phone-number":"+14155550123","search-term":"Jane Doe"},"has-match":true,"completed-at":"2024-03-15T18:33:30.000Z"}}}`),
		want: event(`"payload":{"data":{"type":"report/business-lookup","id":"rep_1","attributes":{"status":"ready","query":{"name-first":null,"birthdate":null,"address-street-1":null,"phone-number":null,"search-term":null},"has-match":null,"completed-at":"2024-03-15T18:33:30.000Z"}}}`),
	}, {
		name: "watchlist term",
		body: event(`"payload":{"data":{"type":"report/watchlist","id":"rep_1","attributes":{"term":"Jane Marie Doe","ignore-list":["Jane Doe"],"is-recurring":false,"name":"Example Report"}}}`),
		want: event(`"payload":{"data":{"type":"report/watchlist","id":"rep_1","attributes":{"term":null,"ignore-list":[null],"is-recurring":null,"name":null}}}`),
	}, {
		name: "verification identity",
		body: event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","normalized-address-street-1":"123 Main St","normalized-address-postal-code":"94111","document-number":"123456","nationality":"US","sex":"F","birthplace":"Springfield","issue-date":"2018-01-15","expiration-date":"2028-09-08","entity-confidence-score":42.5,"created-at-ts":1708040701}}}`),
		want: event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","normalized-address-street-1":null,"normalized-address-postal-code":null,"document-number":null,"nationality":null,"sex":null,"birthplace":null,"issue-date":null,"expiration-date":null,"entity-confidence-score":null,"created-at-ts":null}}}`),
	}, {
		name: "photos, video and files",
		body: event(`"payload":{"data":{"type":"verification/selfie","id":"ver_1","attributes":{"photo-urls":["https://files.withpersona.com/l.jpg?access_token=TOKEN",{"page":"front","url":"https://files.withpersona.com/f.jpg?access_token=TOKEN"}],"center-photo-url":"https://files.withpersona.com/c.jpg?access_token=TOKEN","selfie-photo":{"filename":"selfie_photo.jpg","url":"https://files.withpersona.com/s.jpg?access_token=TOKEN","byte-size":11686},"video-url":"https://files.withpersona.com/v.mp4?access_token=TOKEN","files":[{"filename":"document_front.jpg","url":"https://files.withpersona.com/d.jpg?access_token=TOKEN","byte-size":102400}]}}}`),
		want: event(`"payload":{"data":{"type":"verification/selfie","id":"ver_1","attributes":{"photo-urls":[null,{"page":null,"url":null}],"center-photo-url":null,"selfie-photo":{"filename":null,"url":null,"byte-size":null},"video-url":null,"files":[{"filename":null,"url":null,"byte-size":null}]}}}`),
	}, {
		name: "checks keep their status",
		body: event(`"payload":{"data":{"type":"verification/database","id":"ver_1","attributes":{"checks":[{"name":"database_name_comparison","status":"failed","reasons":["name_mismatch"],"metadata":{"country":"US"}}]}}}`),
		want: event(`"payload":{"data":{"type":"verification/database","id":"ver_1","attributes":{"checks":[{"name":null,"status":"failed","reasons":[null],"metadata":{"country":null}}]}}}`),
	}, {
		name: "fields keep their types",
		body: event(`"payload":{"data":{"type":"account","id":"act_1","attributes":{"fields":{"name_first":{"type":"string","value":"Jane"},"name":{"type":"hash","value":{"first":{"type":"string","value":"Jordan"}}},"odd":"Jane","count":{"type":7,"value":3}}}}}`),
		want: event(`"payload":{"data":{"type":"account","id":"act_1","attributes":{"fields":{"name_first":{"type":"string","value":null},"name":{"type":"hash","value":null},"odd":null,"count":{"type":null,"value":null}}}}}`),
	}, {
		name: "fields that are no object",
		body: event(`"payload":{"data":{"type":"case","id":"case_1","attributes":{"fields":["Jane"]}}}`),
		want: event(`"payload":{"data":{"type":"case","id":"case_1","attributes":{"fields":null}}}`),
	}, {
		name:          "tags and context tags",
		body:          event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"tags":["vip"]}}},"context":{"added-tags":["vip"],"removed-tags":["new-customer"],"reason":"manual"}`),
		want:          event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"tags":[]}}},"context":{"added-tags":[],"removed-tags":[],"reason":null}`),
		wantRetention: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"tags":["vip"]}}},"context":{"added-tags":[],"removed-tags":[],"reason":null}`),
	}, {
		name: "tags of odd shapes",
		body: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"tags":[1,"vip"],"case-tags":"vip","other-tags":null,"more-tags":[]}}}`),
		want: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"tags":[],"case-tags":[],"other-tags":null,"more-tags":[]}}}`),
	}, {
		name:          "reference-id of an included inquiry",
		body:          event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","reference-id":"ver-ref"},"relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}},"included":[{"type":"inquiry","id":"inq_1","attributes":{"reference-id":"user-1234","tags":["vip"],"status":"approved"}}]}`),
		want:          event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","reference-id":null},"relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}},"included":[{"type":"inquiry","id":"inq_1","attributes":{"reference-id":"user-1234","tags":[],"status":"approved"}}]}`),
		wantAll:       event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","reference-id":null},"relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}},"included":[{"type":"inquiry","id":"inq_1","attributes":{"reference-id":null,"tags":[],"status":"approved"}}]}`),
		wantRetention: event(`"payload":{"data":{"type":"verification/government-id","id":"ver_1","attributes":{"status":"passed","reference-id":null},"relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"}}}},"included":[{"type":"inquiry","id":"inq_1","attributes":{"reference-id":"user-1234","tags":["vip"],"status":"approved"}}]}`),
	}, {
		name: "reference-id of an account",
		body: event(`"payload":{"data":{"type":"account","id":"act_1","attributes":{"reference-id":"customer-4821","tags":["vip"],"account-status":"Approved"}}}`),
		want: event(`"payload":{"data":{"type":"account","id":"act_1","attributes":{"reference-id":null,"tags":[],"account-status":null}}}`),
	}, {
		name: "reference-id outside attributes or not a string",
		body: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","reference-id":"user-1234","attributes":{"reference-id":{"id":"x"}},"meta":{"reference-id":"user-1234"}}}`),
		want: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","reference-id":null,"attributes":{"reference-id":null},"meta":{"reference-id":null}}}`),
	}, {
		name:          "type after attributes",
		body:          event(`"payload":{"data":{"attributes":{"reference-id":"user-1234","tags":["vip"],"name-first":"Jane"},"id":"inq_1","type":"inquiry"},"included":[{"attributes":{"reference-id":"customer-4821","tags":["vip"]},"type":"account","id":"act_1"},{"attributes":{"reference-id":"user-1234"},"type":"inquiry","type":"account"}]}`),
		want:          event(`"payload":{"data":{"attributes":{"reference-id":"user-1234","tags":[],"name-first":null},"id":"inq_1","type":"inquiry"},"included":[{"attributes":{"reference-id":null,"tags":[]},"type":"account","id":"act_1"},{"attributes":{"reference-id":null},"type":"inquiry","type":"account"}]}`),
		wantAll:       event(`"payload":{"data":{"attributes":{"reference-id":null,"tags":[],"name-first":null},"id":"inq_1","type":"inquiry"},"included":[{"attributes":{"reference-id":null,"tags":[]},"type":"account","id":"act_1"},{"attributes":{"reference-id":null},"type":"inquiry","type":"account"}]}`),
		wantRetention: event(`"payload":{"data":{"attributes":{"reference-id":"user-1234","tags":["vip"],"name-first":null},"id":"inq_1","type":"inquiry"},"included":[{"attributes":{"reference-id":null,"tags":[]},"type":"account","id":"act_1"},{"attributes":{"reference-id":null},"type":"inquiry","type":"account"}]}`),
	}, {
		name: "relationships keep ids",
		body: event(`"payload":{"data":{"type":"report/watchlist","id":"rep_1","relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"},"links":{"related":"https://withpersona.com/api/v1/inquiries/inq_1"},"meta":{"count":2}}}}}`),
		want: event(`"payload":{"data":{"type":"report/watchlist","id":"rep_1","relationships":{"inquiry":{"data":{"type":"inquiry","id":"inq_1"},"links":{"related":null},"meta":{"count":null}}}}}`),
	}, {
		name: "timestamps and look-alikes",
		body: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"expires-at":"2024-04-15T00:00:00.000Z","redacted-at":"2024-09-15T00:00:00.000Z","decisioned-at":null,"updated-at":12,"started-at":{"zone":"UTC"},"format":"pdf","flat":"3B","chat":"hi there","stat":"Jane","at":"Jane","created-at-ts":1708040701}}}`),
		want: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"expires-at":"2024-04-15T00:00:00.000Z","redacted-at":"2024-09-15T00:00:00.000Z","decisioned-at":null,"updated-at":null,"started-at":{"zone":null},"format":null,"flat":null,"chat":null,"stat":null,"at":null,"created-at-ts":null}}}`),
	}, {
		name: "times Parse reads, however written",
		body: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"createdat":"2024-03-15T18:30:00.000Z","redactedat":"2024-09-15T00:00:00.000Z","updatedat":"2024-09-15T00:00:00.000Z"}}}`),
		want: event(`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"createdat":"2024-03-15T18:30:00.000Z","redactedat":"2024-09-15T00:00:00.000Z","updatedat":null}}}`),
	}, {
		name: "kept members of other kinds",
		body: event(`"payload":{"data":{"type":"inquiry","id":12,"attributes":{"status":true,"name":"Jane"},"meta":{"status":{"code":"Jane","id":"x_1"},"type":[false,"Jane"]}}}`),
		want: event(`"payload":{"data":{"type":"inquiry","id":null,"attributes":{"status":null,"name":null},"meta":{"status":{"code":null,"id":"x_1"},"type":[null,null]}}}`),
	}, {
		name: "unknown members",
		body: `{"meta":{"trace":"Jane","id":"m_1"},"data":{"type":"event","id":"evt_1","note":"Jane","attributes":{"name":"inquiry.approved","extra":["Jane",3]}},"extra":"Jane"}`,
		want: `{"meta":{"trace":null,"id":"m_1"},"data":{"type":"event","id":"evt_1","note":null,"attributes":{"name":"inquiry.approved","extra":[null,null]}},"extra":null}`,
	}, {
		name: "no envelope",
		body: `{"attributes":{"name":"Jane","created-at":"2024-03-15T18:30:00.000Z"},"data":{"name":"Jane"}}`,
		want: `{"attributes":{"name":null,"created-at":"2024-03-15T18:30:00.000Z"},"data":{"name":null}}`,
	}}
	for _, tt := range tests {
		for _, infl := range inflections {
			for _, sc := range scrubs {
				want := tt.want
				switch {
				case sc.name == "ScrubAll" && tt.wantAll != "":
					want = tt.wantAll
				case sc.name == "ScrubForRetention" && tt.wantRetention != "":
					want = tt.wantRetention
				}
				t.Run(tt.name+"/"+infl.name+"/"+sc.name, func(t *testing.T) {
					body := inflectBody(t, []byte(tt.body), infl.key)
					want := string(inflectBody(t, []byte(want), infl.key))
					got := mustScrub(t, sc.fn, body)
					if string(got) != want {
						t.Errorf("got  %s\nwant %s", got, want)
					}
				})
			}
		}
	}
}

// TestScrubRoots: dead letters can be any JSON value.
func TestScrubRoots(t *testing.T) {
	tests := []struct{ body, want string }{
		{`null`, `null`},
		{` "Jane" `, ` null `},
		{`42`, `null`},
		{`true`, `null`},
		{`{}`, `{}`},
		{`[]`, `[]`},
		{`[1, "Jane", {"id": "x_1", "b": 2}, [false]]`, `[null, null, {"id": "x_1", "b": null}, [null]]`},
		{`{"type": "inquiry", "attributes": {"reference-id": "user-1234"}}`, `{"type": "inquiry", "attributes": {"reference-id": "user-1234"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, err := engine.Scrub([]byte(tt.body))
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestScrubRejectsInvalidJSON(t *testing.T) {
	for _, body := range []string{
		``, ` `, `{"data":`, `{"a":1}x`, `[1,]`, `{"a" 1}`, `nul`, `"\x`, "\"\xff\"", `{"a":"\u12"}`,
		strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100),
	} {
		for _, sc := range scrubs {
			t.Run(sc.name+"/"+body, func(t *testing.T) {
				if got, err := sc.fn([]byte(body)); err == nil {
					t.Errorf("got %q and no error", got)
				}
			})
		}
	}
}

// TestScrubKeepsLayout: the bytes Scrub keeps are the bytes received,
// white space included.
func TestScrubKeepsLayout(t *testing.T) {
	body := []byte(`{"data": {"attributes": {"context": {"added-tags": ["vip"]}, "payload": {"data": {"attributes": {"status": "approved", "fields": {"name-first": {"type": "string", "value": "Jane"}, "odd": "x"}, "name-last": "Doe", "nameSuffix": "Jr.", "name": "Example KYC Template", "note": null, "tags": [ ]}}}}}}`)
	want := `{"data": {"attributes": {"context": {"added-tags": []}, "payload": {"data": {"attributes": {"status": "approved", "fields": {"name-first": {"type": "string", "value": null}, "odd": null}, "name-last": null, "nameSuffix": null, "name": null, "note": null, "tags": [ ]}}}}}}`
	got, err := engine.Scrub(body)
	if err != nil || string(got) != want {
		t.Errorf("Scrub = %s, %v\nwant %s", got, err, want)
	}
}

// TestScrub runs the three scrubs over the repository's event fixtures:
// the personal values go, the event reads the same.
func TestScrub(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "*", "*.json"))
	top, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "*.json"))
	files = append(files, top...)
	if len(files) < 15 {
		t.Fatalf("found only %d fixtures", len(files))
	}
	for _, file := range files {
		rel, _ := filepath.Rel(filepath.Join("..", "testdata", "events"), file)
		body := fixture(t, rel)
		want, err := engine.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, sc := range scrubs {
			t.Run(rel+"/"+sc.name, func(t *testing.T) {
				scrubbed := mustScrub(t, sc.fn, body)
				for _, pii := range append(fixturePII, "creator@example.com", "Example KYC Template") {
					if sc.keepTag && want.IsInquiry() && pii == "vip" {
						continue
					}
					if bytes.Contains(scrubbed, []byte(pii)) {
						t.Errorf("scrubbed body still holds %q", pii)
					}
				}
				keep := []string{want.ID, want.Name, want.ObjectID, want.Inquiry.AccountID, want.Inquiry.TemplateID, want.RelatedInquiryID}
				if sc.keepRef {
					keep = append(keep, want.Inquiry.ReferenceID)
				}
				for _, k := range keep {
					if !bytes.Contains(scrubbed, []byte(k)) {
						t.Errorf("scrubbing removed %q, which is no PII", k)
					}
				}
				checkSameEvent(t, body, scrubbed, sc.keepRef, sc.keepTag)
			})
		}
	}
}

// checkSameEvent checks that scrubbed, a scrub of body, parses to the
// event body does, but for the tags and reference-id the scrub dropped.
func checkSameEvent(t *testing.T, body, scrubbed []byte, keepRef, keepTags bool) {
	t.Helper()
	want, err := engine.Parse(body)
	if err != nil {
		return
	}
	got, err := engine.Parse(scrubbed)
	if err != nil {
		t.Fatalf("the scrubbed body does not parse: %v\n%s", err, scrubbed)
	}
	if want.Inquiry.Tags != nil && !keepTags {
		want.Inquiry.Tags = []string{}
	}
	if !keepRef {
		want.Inquiry.ReferenceID = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scrubbing changed the facts:\n got  %+v\n want %+v", got, want)
	}
}

// checkIdempotent checks that scrubbing a scrubbed body again, with the
// same scrub or one that keeps less, gives what that scrub gives body.
func checkIdempotent(t *testing.T, body []byte) {
	t.Helper()
	// Each scrub keeps no more than the one before it.
	order := []int{2, 0, 1} // ScrubForRetention, Scrub, ScrubAll
	for i, first := range order {
		once, err := scrubs[first].fn(body)
		if err != nil {
			t.Fatalf("%s: %v", scrubs[first].name, err)
		}
		for _, second := range order[i:] {
			direct, _ := scrubs[second].fn(body)
			again, err := scrubs[second].fn(once)
			if err != nil || !bytes.Equal(again, direct) {
				t.Errorf("%s(%s(b)) = %s, %v\nwant %s(b) = %s", scrubs[second].name, scrubs[first].name, again, err, scrubs[second].name, direct)
			}
		}
	}
}

// TestScrubGolden pins Scrub's output for two of Persona's examples; run
// go test ./engine -run TestScrubGolden -update after a deliberate change.
func TestScrubGolden(t *testing.T) {
	for _, name := range []string{"inquiry-redacted", "verification-failed"} {
		t.Run(name, func(t *testing.T) {
			got := mustScrub(t, engine.Scrub, personaExample(t, name+".json"))
			golden(t, filepath.Join("testdata", "scrub", name+".golden.json"), string(got))
		})
	}
}

// personaExample reads one of Persona's example bodies in the repository's
// testdata/persona.
func personaExample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "persona", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// personaExampleNames lists Persona's example bodies in testdata/persona:
// all 131 of them, or the test fails.
func personaExampleNames(tb testing.TB) []string {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "persona", "*.json"))
	if len(files) < 131 {
		tb.Fatalf("found only %d of Persona's example bodies", len(files))
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return names
}

func FuzzScrub(f *testing.F) {
	for _, name := range []string{"inquiry-redacted.json", "inquiry-approved.json", "verification-failed.json", "account-updated-tags.json", "report-watchlist-matched.json"} {
		f.Add(personaExample(f, name))
	}
	for _, s := range []string{
		`null`, `[1,"a",{"tags":["x"]}]`, `{"attributes":{"reference-id":"r","tags":["t"]},"type":"inquiry"}`,
		`{"data":{"attributes":{"name":7,"createdat":"x"}}}`, `{"fields":{"a":{"type":"t","value":{"id":"i"}}}}`,
		`{"a\u0074":"x","t\u0079pe":"inqu\u0069ry","attributes":{"referenceId":"r"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := engine.Scrub(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("Scrub accepted invalid JSON %q", body)
		}
		if !json.Valid(out) {
			t.Fatalf("Scrub gave invalid JSON %q for %q", out, body)
		}
		checkIdempotent(t, body)
		for _, sc := range scrubs {
			checkSameEvent(t, body, mustScrub(t, sc.fn, body), sc.keepRef, sc.keepTag)
		}
	})
}

// BenchmarkScrub: one inquiry, one verification and one report body, compact
// as Persona sends them.
func BenchmarkScrub(b *testing.B) {
	for _, name := range []string{"inquiry-approved.json", "verification-failed.json", "report-watchlist-matched.json"} {
		var buf bytes.Buffer
		if err := json.Compact(&buf, personaExample(b, name)); err != nil {
			b.Fatal(err)
		}
		body := buf.Bytes()
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := engine.Scrub(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
