package engine

import "strings"

// Scrub returns a copy of a stored webhook body with the personal data
// removed as Persona's own redaction removes it (reference section 5), so
// the log still explains an inquiry's history after it forgot the person.
//
// In payload.data and in every object of payload.included it nulls the
// identity attributes (name-*, address-*, birthdate, email-address,
// phone-number, identification-number, social-security-number), note, the
// value of every entry in fields, the network traces of inquiry sessions
// (ip-address, user-agent, latitude, longitude), photo URLs of
// verifications (*-photo-url) and the name a watchlist report searched
// for (term); it empties tags and the added-tags and
// removed-tags of the event context. Ids, names, types, statuses and
// timestamps stay. Every other byte of the body is kept as it was, in all
// three key inflections. A body that does not parse is returned with an
// error and must not be stored in its place.
func Scrub(body []byte) ([]byte, error) {
	r := scrubber{s: scanner{buf: body}}
	if err := r.s.object(r.root); err != nil {
		return nil, err
	}
	if err := r.s.end(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body))
	last := 0
	for _, sp := range r.spans {
		out = append(out, body[last:sp.start]...)
		out = append(out, sp.repl...)
		last = sp.end
	}
	return append(out, body[last:]...), nil
}

type span struct {
	start, end int
	repl       string
}

type scrubber struct {
	s     scanner
	spans []span
}

// replace skips the value at the cursor and records that it is to become
// repl, unless it already is null.
func (r *scrubber) replace(repl string) error {
	if r.s.peek() == 'n' {
		return r.s.skip()
	}
	start := r.s.pos
	if err := r.s.skip(); err != nil {
		return err
	}
	r.spans = append(r.spans, span{start, r.s.pos, repl})
	return nil
}

// within descends into the object at the cursor with fn, or skips a value
// of any other kind.
func (r *scrubber) within(fn func(key []byte) error) error {
	if r.s.peek() != '{' {
		return r.s.skip()
	}
	return r.s.object(fn)
}

func (r *scrubber) root(key []byte) error {
	if !keyIs(key, "data") {
		return r.s.skip()
	}
	return r.within(func(key []byte) error {
		if !keyIs(key, "attributes") {
			return r.s.skip()
		}
		return r.within(r.eventAttributes)
	})
}

func (r *scrubber) eventAttributes(key []byte) error {
	switch {
	case keyIs(key, "payload"):
		return r.within(r.payload)
	case keyIs(key, "context"):
		return r.within(func(key []byte) error {
			if keyIs(key, "addedtags") || keyIs(key, "removedtags") {
				return r.replace("[]")
			}
			return r.s.skip()
		})
	}
	return r.s.skip()
}

func (r *scrubber) payload(key []byte) error {
	switch {
	case keyIs(key, "data"):
		return r.within(r.resource)
	case keyIs(key, "included"):
		if r.s.peek() != '[' {
			return r.s.skip()
		}
		return r.s.array(func() error { return r.within(r.resource) })
	}
	return r.s.skip()
}

// resource scrubs the attributes of one JSON:API resource object.
func (r *scrubber) resource(key []byte) error {
	if !keyIs(key, "attributes") {
		return r.s.skip()
	}
	return r.within(r.attribute)
}

func (r *scrubber) attribute(key []byte) error {
	switch {
	case keyIs(key, "tags"):
		return r.replace("[]")
	case keyIs(key, "fields"):
		return r.within(func([]byte) error {
			if r.s.peek() != '{' {
				return r.replace("null")
			}
			return r.s.object(func(key []byte) error {
				if keyIs(key, "value") {
					return r.replace("null")
				}
				return r.s.skip()
			})
		})
	case isPersonalAttribute(key):
		return r.replace("null")
	}
	return r.s.skip()
}

// personalAttributes are the attributes Persona nulls on redaction, plus
// the traces an inquiry session, a verification or a report keeps of the
// person.
var personalAttributes = []string{
	"birthdate", "emailaddress",
	"phonenumber", "identificationnumber", "socialsecuritynumber", "note",
	"ipaddress", "useragent", "latitude", "longitude", "term",
}

func isPersonalAttribute(key []byte) bool {
	for _, name := range personalAttributes {
		if keyIs(key, name) {
			return true
		}
	}
	norm := normalizeKey(key)
	return strings.HasPrefix(norm, "address") || strings.HasSuffix(norm, "photourl") ||
		strings.HasPrefix(norm, "name") && norm != "name" // name-*, but not an object's name
}

// normalizeKey lower-cases a key and drops its separators, the form keyIs
// compares against.
func normalizeKey(key []byte) string {
	b := make([]byte, 0, len(key))
	for _, c := range key {
		switch {
		case c == '-' || c == '_':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
