package engine

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"
)

// Event is one Persona webhook event, reduced to the facts personad folds.
// Parse builds it from the raw body; the body itself stays the record.
type Event struct {
	ID         string    // data.id, "evt_…": the idempotency key
	Name       string    // data.attributes.name, e.g. "inquiry.approved"
	CreatedAt  time.Time // data.attributes.created-at: the ordering key (UTC)
	ObjectType string    // payload.data.type, e.g. "inquiry", "account"
	ObjectID   string    // payload.data.id
	// RelatedInquiryID is the inquiry an event about another object
	// belongs to: payload.data.relationships.inquiry of a verification, a
	// report or an inquiry session. It is "" for inquiry events (their
	// ObjectID is the inquiry) and for objects that name no inquiry.
	RelatedInquiryID string
	// Owners are the objects payload.data belongs to, by its own
	// relationships: inquiry, inquiries, account, accounts, transaction,
	// case, and the inquiries and accounts among related-objects. An
	// inquiry's only owner is its account; an account has none. So the
	// links never lead from one inquiry to another.
	Owners []string
	// Parts are the objects an inquiry lists as its own: the ids of its
	// verifications, reports, sessions, documents and selfies
	// relationships. nil for other objects.
	Parts []string
	// SubjectRedacted reports that the event says payload.data was
	// redacted: its name ends in ".redacted" or its redacted-at is set.
	SubjectRedacted bool
	// Inquiry holds the payload's inquiry snapshot; it is zero unless
	// ObjectType is "inquiry".
	Inquiry Snapshot
	// Conflicted says that another body arrived under this event's id
	// after it was stored (Record.Conflicted). Parse never sets it: the
	// engine copies it from the stored record, and Fold notes it as an
	// AnomalyConflictingRedelivery.
	Conflicted bool

	ids [8]string // backing for Owners and Parts, saving their allocations
}

// Snapshot is what an inquiry event's payload says about the inquiry.
type Snapshot struct {
	Status      Status    // payload status, "" when absent or blanked
	RedactedAt  time.Time // zero when null or absent
	ReferenceID string
	AccountID   string
	TemplateID  string   // inquiry-template relationship, else template
	Tags        []string // nil when the payload has no tags attribute
	CreatedAt   time.Time
}

// IsInquiry reports whether the event is about an inquiry and so takes part
// in an inquiry's lifecycle.
func (e *Event) IsInquiry() bool { return e.ObjectType == "inquiry" && e.ObjectID != "" }

// ErrMalformed is matched (with errors.Is) by every error Parse returns.
var ErrMalformed = errors.New("malformed event")

// ParseError says why a body is not a Persona event, naming the field.
type ParseError struct {
	Field  string // path in kebab-case, e.g. "data.attributes.created-at"; "" for the body
	Reason string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return "malformed event: " + e.Reason
	}
	return "malformed event: " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func malformed(field, reason string) *ParseError {
	return &ParseError{Field: field, Reason: reason}
}

// Field paths named in errors.
const (
	fieldData         = "data"
	fieldType         = "data.type"
	fieldID           = "data.id"
	fieldName         = "data.attributes.name"
	fieldCreatedAt    = "data.attributes.created-at"
	fieldPayload      = "data.attributes.payload"
	fieldObject       = "data.attributes.payload.data"
	fieldInquiryAttrs = "data.attributes.payload.data.attributes"
)

// Parse reads a webhook body into an Event. It accepts kebab-case,
// snake_case and camelCase keys. A body that is not JSON, not an event
// envelope, lacks an id, name or created-at, carries an unparsable time or
// a payload that is not an object gives a *ParseError naming the field.
// Parse never panics; events about objects other than inquiries parse to an
// Event with no lifecycle effect.
func Parse(body []byte) (*Event, error) {
	p := parser{s: scanner{buf: body}}
	ev := &Event{}
	if err := p.root(ev); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) && pe.Field != "" {
			// A body that is not JSON at all is reported as such, even
			// when a field before the broken part was already wrong.
			v := scanner{buf: body}
			if serr := v.skip(); serr != nil || v.end() != nil {
				return nil, p.syntax(cmp.Or(serr, errSyntax))
			}
		}
		return nil, err
	}
	return ev, nil
}

type parser struct {
	s          scanner
	sawPayload bool
	// attrErr is the first attribute of payload.data that was not of the
	// type personad reads: an error only once the object is known to be
	// an inquiry, whose lifecycle needs it.
	attrErr *ParseError
}

// syntax turns a scanner error into a ParseError.
func (p *parser) syntax(err error) error {
	var pe *ParseError
	if errors.As(err, &pe) {
		return err
	}
	return malformed("", "body is not valid JSON: "+err.Error())
}

func (p *parser) root(ev *Event) error {
	if p.s.peek() != '{' {
		if err := p.s.skip(); err != nil {
			return p.syntax(err)
		}
		return malformed("", "not an event envelope: want a JSON object")
	}
	var sawData bool
	err := p.s.object(func(key []byte) error {
		if !keyIs(key, "data") {
			return p.s.skip()
		}
		sawData = true
		if p.s.peek() != '{' {
			return malformed(fieldData, "want an object")
		}
		return p.data(ev)
	})
	if err == nil {
		err = p.s.end()
	}
	if err != nil {
		return p.syntax(err)
	}
	if !sawData {
		return malformed(fieldData, "missing: not an event envelope")
	}
	return nil
}

func (p *parser) data(ev *Event) error {
	var typ string
	var sawType, sawAttrs bool
	err := p.s.object(func(key []byte) error {
		var err error
		switch {
		case keyIs(key, "type"):
			sawType = true
			typ, err = p.str(fieldType)
		case keyIs(key, "id"):
			ev.ID, err = p.str(fieldID)
		case keyIs(key, "attributes"):
			sawAttrs = true
			if p.s.peek() != '{' {
				return malformed("data.attributes", "want an object")
			}
			err = p.attributes(ev)
		default:
			err = p.s.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !sawType || typ != "event":
		return malformed(fieldType, `want "event": not an event envelope`)
	case ev.ID == "":
		return malformed(fieldID, "missing")
	case !sawAttrs:
		return malformed("data.attributes", "missing")
	case !p.sawPayload:
		return malformed(fieldPayload, "missing")
	case ev.Name == "":
		return malformed(fieldName, "missing")
	case ev.CreatedAt.IsZero():
		return malformed(fieldCreatedAt, "missing")
	}
	return nil
}

func (p *parser) attributes(ev *Event) error {
	return p.s.object(func(key []byte) error {
		var err error
		switch {
		case keyIs(key, "name"):
			ev.Name, err = p.str(fieldName)
		case keyIs(key, "createdat"):
			ev.CreatedAt, err = p.time(fieldCreatedAt)
		case keyIs(key, "payload"):
			p.sawPayload = true
			if p.s.peek() != '{' {
				return malformed(fieldPayload, "want an object")
			}
			err = p.payload(ev)
		default:
			err = p.s.skip()
		}
		return err
	})
}

func (p *parser) payload(ev *Event) error {
	return p.s.object(func(key []byte) error {
		if !keyIs(key, "data") || p.s.peek() != '{' {
			return p.s.skip()
		}
		return p.object(ev)
	})
}

// object reads payload.data. Persona does not promise member order ("type"
// may follow "attributes"), so the snapshot is read whatever the type and
// kept only for inquiries.
func (p *parser) object(ev *Event) error {
	var (
		snap    Snapshot
		related string
		rel     = relations{owners: ev.ids[:0:4], parts: ev.ids[4:4:8]}
	)
	err := p.s.object(func(key []byte) error {
		var err error
		switch {
		case keyIs(key, "type"):
			ev.ObjectType, err = p.str(fieldObject + ".type")
		case keyIs(key, "id"):
			ev.ObjectID, err = p.str(fieldObject + ".id")
		case keyIs(key, "attributes"):
			if p.s.peek() != '{' {
				return p.s.skip()
			}
			err = p.inquiryAttributes(&snap)
		case keyIs(key, "relationships"):
			if p.s.peek() != '{' {
				return p.s.skip()
			}
			err = p.relationships(&snap, &related, &rel)
		default:
			err = p.s.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	// Sorted, so that member order (which Persona does not promise) does
	// not change the event.
	slices.Sort(rel.owners)
	slices.Sort(rel.parts)
	ev.Owners, ev.Parts = rel.owners, rel.parts
	ev.SubjectRedacted = !snap.RedactedAt.IsZero() || strings.HasSuffix(ev.Name, ".redacted")
	if ev.ObjectType == "inquiry" && p.attrErr != nil {
		return p.attrErr
	}
	switch ev.ObjectType {
	case "inquiry":
		// An inquiry belongs to its account and to nothing else: were it
		// to belong to a transaction or a case, which belong to several
		// inquiries, redacting one inquiry would forget the others.
		ev.Inquiry = snap
		ev.Owners = ev.ids[:0:4]
		if snap.AccountID != "" {
			ev.Owners = append(ev.Owners, snap.AccountID)
		}
	case "account":
		ev.Owners, ev.Parts = nil, nil // an account belongs to nothing, for the same reason
	default:
		ev.RelatedInquiryID = related
		ev.Parts = nil
	}
	return nil
}

// OwnerLinks returns the links from payload.data to each of its Owners.
func (e *Event) OwnerLinks() []Link {
	if e.ObjectID == "" || len(e.Owners) == 0 {
		return nil
	}
	links := make([]Link, 0, len(e.Owners))
	for _, o := range e.Owners {
		if o != e.ObjectID {
			links = append(links, Link{Object: e.ObjectID, Owner: o})
		}
	}
	return links
}

// Links returns what the event says belongs to what: payload.data to each
// of its Owners, and each of an inquiry's Parts to the inquiry.
func (e *Event) Links() []Link {
	if e.ObjectID == "" {
		return nil
	}
	links := make([]Link, 0, len(e.Owners)+len(e.Parts))
	for _, o := range e.Owners {
		if o != e.ObjectID {
			links = append(links, Link{Object: e.ObjectID, Owner: o})
		}
	}
	for _, p := range e.Parts {
		if p != e.ObjectID {
			links = append(links, Link{Object: p, Owner: e.ObjectID})
		}
	}
	return links
}

// appendID appends id to ids unless it is empty or there already.
func appendID(ids []string, id string) []string {
	if id == "" || slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}

func (p *parser) inquiryAttributes(snap *Snapshot) error {
	return p.s.object(func(key []byte) error {
		err := p.inquiryAttribute(key, snap)
		if pe, ok := err.(*ParseError); ok { // the value was consumed: read on
			if p.attrErr == nil {
				p.attrErr = pe
			}
			return nil
		}
		return err
	})
}

// inquiryAttribute reads one member of payload.data.attributes.
func (p *parser) inquiryAttribute(key []byte, snap *Snapshot) error {
	{
		var err error
		switch {
		case keyIs(key, "status"):
			var s string
			s, err = p.optStr(fieldInquiryAttrs + ".status")
			snap.Status = normalizeStatus(s)
		case keyIs(key, "redactedat"):
			snap.RedactedAt, err = p.optTime(fieldInquiryAttrs + ".redacted-at")
		case keyIs(key, "referenceid"):
			snap.ReferenceID, err = p.optStr(fieldInquiryAttrs + ".reference-id")
		case keyIs(key, "createdat"):
			snap.CreatedAt, err = p.optTime(fieldInquiryAttrs + ".created-at")
		case keyIs(key, "tags"):
			snap.Tags, err = p.tags()
		default:
			err = p.s.skip()
		}
		return err
	}
}

func (p *parser) tags() ([]string, error) {
	const field = fieldInquiryAttrs + ".tags"
	if p.s.null() {
		return nil, nil
	}
	if p.s.peek() != '[' {
		if err := p.s.skip(); err != nil {
			return nil, err
		}
		return nil, malformed(field, "want an array of strings")
	}
	tags := []string{}
	var bad error // the first item that is no string; the array is read to its end
	err := p.s.array(func() error {
		if p.s.null() { // Persona's schema makes items nullable: dropped
			return nil
		}
		t, err := p.str(field)
		if _, ok := err.(*ParseError); ok {
			bad = cmp.Or(bad, err)
			return nil
		}
		if err != nil {
			return err
		}
		tags = append(tags, t)
		return nil
	})
	return tags, cmp.Or(err, bad)
}

// relations are the ownership links payload.data's relationships give.
type relations struct {
	owners, parts []string
}

// relationships reads the relationships of payload.data: those an inquiry
// snapshot keeps, the inquiry another object belongs to, and every id that
// says what belongs to what.
func (p *parser) relationships(snap *Snapshot, inquiry *string, rel *relations) error {
	var inquiryTemplate, template string
	err := p.s.object(func(key []byte) error {
		var err error
		switch {
		case keyIs(key, "inquiry"):
			*inquiry, err = p.relationIDs(&rel.owners)
		case keyIs(key, "account"):
			snap.AccountID, err = p.relationIDs(&rel.owners)
		case keyIs(key, "inquiries"), keyIs(key, "accounts"), keyIs(key, "transaction"), keyIs(key, "case"):
			_, err = p.relationIDs(&rel.owners)
		case keyIs(key, "relatedobjects"):
			_, err = p.relationIDs(&rel.owners, "inquiry", "account")
		case keyIs(key, "verifications"), keyIs(key, "reports"), keyIs(key, "sessions"),
			keyIs(key, "documents"), keyIs(key, "selfies"):
			_, err = p.relationIDs(&rel.parts)
		case keyIs(key, "inquirytemplate"):
			inquiryTemplate, err = p.relationIDs(nil)
		case keyIs(key, "template"):
			template, err = p.relationIDs(nil)
		default:
			err = p.s.skip()
		}
		return err
	})
	snap.TemplateID = inquiryTemplate
	if snap.TemplateID == "" {
		snap.TemplateID = template
	}
	return err
}

// relationIDs reads a relationship, {"data": {"type", "id"}} or
// {"data": [{"type", "id"}, …]}, appends its ids to dst (when not nil),
// and returns the first. With types given, only identifiers of those
// types count. A relationship of any other shape ({} or {"data": null})
// gives none; members that are not strings are skipped, never an error:
// Persona's schema makes most of them nullable.
func (p *parser) relationIDs(dst *[]string, types ...string) (first string, err error) {
	if p.s.peek() != '{' {
		return "", p.s.skip()
	}
	one := func() error {
		if p.s.peek() != '{' {
			return p.s.skip()
		}
		var id string
		typeOK := len(types) == 0
		err := p.s.object(func(key []byte) error {
			var err error
			switch {
			case keyIs(key, "id") && p.s.peek() == '"':
				id, err = p.s.str()
			case len(types) > 0 && keyIs(key, "type") && p.s.peek() == '"':
				var t string
				t, err = p.s.str()
				typeOK = slices.Contains(types, t)
			default:
				err = p.s.skip()
			}
			return err
		})
		if id == "" || !typeOK {
			return err
		}
		if first == "" {
			first = id
		}
		if dst != nil {
			*dst = appendID(*dst, id)
		}
		return err
	}
	err = p.s.object(func(key []byte) error {
		switch {
		case !keyIs(key, "data"):
			return p.s.skip()
		case p.s.peek() == '[':
			return p.s.array(one)
		}
		return one()
	})
	return first, err
}

func (p *parser) str(field string) (string, error) {
	if p.s.peek() != '"' {
		if err := p.s.skip(); err != nil {
			return "", err
		}
		return "", malformed(field, "want a string")
	}
	return p.s.str()
}

func (p *parser) optStr(field string) (string, error) {
	if p.s.null() {
		return "", nil
	}
	return p.str(field)
}

func (p *parser) time(field string) (time.Time, error) {
	s, err := p.str(field)
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(field, s)
}

func (p *parser) optTime(field string) (time.Time, error) {
	s, err := p.optStr(field)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	return parseTime(field, s)
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, malformed(field, "want an RFC 3339 time, got "+quoteShort(s))
	}
	return t.UTC(), nil
}

// quoteShort quotes at most 40 bytes of s for an error message: enough to
// recognise a timestamp, never a whole attribute that might hold PII.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for _, r := range s {
		if r < 0x20 || r == '"' || r == '\\' {
			r = '?'
		}
		b = append(b, string(r)...)
	}
	return string(append(b, '"'))
}
