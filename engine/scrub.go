package engine

// Scrub returns a copy of a stored webhook body with everything but what
// the log needs to explain an inquiry's history replaced by JSON null, so
// the body can stay once the person is forgotten. It is an allowlist: keys
// stay and every value not named here becomes null.
//
// It keeps, as strings (or null):
//   - the envelope's data.type, data.id, data.attributes.name and
//     data.attributes.created-at;
//   - in every object anywhere in the body, the members type, id and
//     status, and every timestamp: a key ending in -at, _at or At
//     (created-at, redacted_at, updatedAt; not format or chat), and
//     created-at and redacted-at however they are inflected;
//   - reference-id in the attributes of a resource object whose type is
//     "inquiry" (Persona keeps it on a redacted inquiry); elsewhere it
//     becomes null;
//   - in each entry of a fields object, its type, when a string; the
//     entry's value and every other member become null without being
//     looked into.
//
// A kept member whose value is an object or array is scrubbed like any
// other; a number or boolean there becomes null. tags, added-tags,
// removed-tags and every other key ending in tags become [] (null stays
// null). Every other object and array is scrubbed member by member and
// element by element, keeping its structure, and every other string,
// number and boolean becomes null: a photo-urls array of two URLs becomes
// [null,null]. A root that is not an object or array becomes null.
//
// The three key inflections (kebab-case, snake_case, camelCase) are treated
// alike, and the bytes kept are exactly those received. The result is
// idempotent, and Parse reads from it the same event as from body but for
// tags, which are empty. A body that is not valid JSON, holds a string
// that is not UTF-8 or nests deeper than 64 levels gives an error and no
// copy: the caller must not store it as scrubbed.
func Scrub(body []byte) ([]byte, error) {
	return scrub(body, policy{inquiryReference: true})
}

// ScrubAll is Scrub that keeps no reference-id: an inquiry's becomes null
// too, as when Persona redacts the account the inquiry belongs to. It is
// for bodies of a redacted account and for dead letters. Errors as Scrub.
func ScrubAll(body []byte) ([]byte, error) {
	return scrub(body, policy{})
}

// ScrubForRetention is Scrub that also keeps the tags of an inquiry (the
// tags member of the attributes of a resource object whose type is
// "inquiry") as received, when they are an array of strings. That leaves
// every fact a fold reads (an inquiry's status, redacted-at, reference-id,
// tags, created-at and relationship ids), so folding the retained log again
// gives the same projection. Errors as Scrub.
func ScrubForRetention(body []byte) ([]byte, error) {
	return scrub(body, policy{inquiryReference: true, inquiryTags: true})
}

// policy says what a scrub keeps in an inquiry's attributes beyond what
// Scrub keeps everywhere.
type policy struct {
	inquiryReference bool // reference-id, when a string
	inquiryTags      bool // tags, when an array of strings
}

func scrub(body []byte, p policy) ([]byte, error) {
	r := scrubber{s: scanner{buf: body}, policy: p}
	var err error
	if r.s.peek() == '{' {
		err = r.object(r.rootMember, r.attribute)
	} else {
		err = r.value()
	}
	if err == nil {
		err = r.s.end()
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body))
	last := 0
	for _, sp := range r.spans {
		if sp.kept {
			continue
		}
		out = append(out, body[last:sp.start]...)
		out = append(out, sp.repl...)
		last = sp.end
	}
	return append(out, body[last:]...), nil
}

// span is a value of the body, body[start:end], to be written as repl,
// unless kept: an inquiry's reference-id or tags are recorded as spans
// before the object's type is known, since the type may come last.
type span struct {
	start, end int
	repl       string
	kept       bool
}

// scrubber records the spans to replace while it walks a body once. The
// spans come in the order of the body.
type scrubber struct {
	s      scanner
	policy policy
	spans  []span
	// inquiryOnly indexes the spans that are dropped (the value kept) if
	// the object being walked turns out to be an inquiry; each object
	// settles the entries it added when it ends.
	inquiryOnly []int
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
	r.spans = append(r.spans, span{start: start, end: r.s.pos, repl: repl})
	return nil
}

// value scrubs the value at the cursor by the generic rule: objects and
// arrays are walked, any other value becomes null.
func (r *scrubber) value() error {
	switch r.s.peek() {
	case '{':
		return r.object(r.member, r.attribute)
	case '[':
		return r.s.array(r.value)
	}
	return r.replace("null")
}

// keepString keeps a string or null at the cursor, walks an object or
// array, and nulls any other value.
func (r *scrubber) keepString() error {
	switch r.s.peek() {
	case '"':
		return r.s.skipString()
	case '{', '[':
		return r.value()
	}
	return r.replace("null")
}

// object scrubs the object at the cursor: the members of its attributes
// object with attr, its other members with member. It notes the object's
// type to settle what attr left to it.
func (r *scrubber) object(member, attr func(key []byte) error) error {
	mark := len(r.inquiryOnly)
	inquiry := false
	err := r.s.object(func(key []byte) error {
		switch {
		case keyIs(key, "type"):
			if r.s.peek() != '"' {
				inquiry = false
				return r.keepString()
			}
			var err error
			inquiry, err = r.stringIs("inquiry")
			return err
		case keyIs(key, "attributes") && r.s.peek() == '{':
			return r.s.object(attr)
		}
		return member(key)
	})
	if inquiry {
		for _, i := range r.inquiryOnly[mark:] {
			r.spans[i].kept = true
		}
	}
	r.inquiryOnly = r.inquiryOnly[:mark]
	return err
}

// stringIs steps over the string at the cursor and reports whether it is
// want, allocating only when the string holds escapes.
func (r *scrubber) stringIs(want string) (bool, error) {
	start := r.s.pos
	escaped, err := r.s.stringBounds()
	if err != nil {
		return false, err
	}
	if !escaped {
		return string(r.s.buf[start+1:r.s.pos-1]) == want, nil
	}
	r.s.pos = start
	s, err := r.s.str()
	return s == want, err
}

// member scrubs one member of an object by the generic rule.
func (r *scrubber) member(key []byte) error {
	switch {
	case keyIs(key, "type"), keyIs(key, "id"), keyIs(key, "status"), isTimestamp(key):
		return r.keepString()
	case keyEndsIn(key, "tags"):
		return r.tags(false)
	case keyIs(key, "fields"):
		return r.fields()
	case keyIs(key, "referenceid"):
		return r.replace("null")
	}
	return r.value()
}

// rootMember scrubs a member of the root object, where data is the event
// envelope.
func (r *scrubber) rootMember(key []byte) error {
	if keyIs(key, "data") && r.s.peek() == '{' {
		return r.object(r.member, r.envelopeAttribute)
	}
	return r.member(key)
}

// envelopeAttribute scrubs a member of data.attributes, which keeps the
// event's name.
func (r *scrubber) envelopeAttribute(key []byte) error {
	if keyIs(key, "name") {
		return r.keepString()
	}
	return r.attribute(key)
}

// attribute scrubs a member of an object's attributes: a resource object's
// reference-id and tags are kept if the resource is an inquiry and the
// policy says so.
func (r *scrubber) attribute(key []byte) error {
	switch {
	case keyIs(key, "referenceid") && r.policy.inquiryReference && r.s.peek() == '"':
		start := r.s.pos
		if err := r.s.skipString(); err != nil {
			return err
		}
		r.inquiryOnly = append(r.inquiryOnly, len(r.spans))
		r.spans = append(r.spans, span{start: start, end: r.s.pos, repl: "null"})
		return nil
	case keyIs(key, "tags"):
		return r.tags(r.policy.inquiryTags)
	}
	return r.member(key)
}

// tags empties the array at the cursor, or replaces any other value but
// null with []. With inquiryMayKeep, an array of strings is kept if the
// object turns out to be an inquiry.
func (r *scrubber) tags(inquiryMayKeep bool) error {
	switch r.s.peek() {
	case 'n':
		return r.s.skip()
	case '[':
	default:
		return r.replace("[]")
	}
	start := r.s.pos
	n, allStrings := 0, true
	err := r.s.array(func() error {
		n++
		if r.s.peek() != '"' {
			allStrings = false
		}
		return r.s.skip()
	})
	if err != nil || n == 0 {
		return err
	}
	if inquiryMayKeep && allStrings {
		r.inquiryOnly = append(r.inquiryOnly, len(r.spans))
	}
	r.spans = append(r.spans, span{start: start, end: r.s.pos, repl: "[]"})
	return nil
}

// fields scrubs an inquiry's (or account's, case's ...) fields object:
// each entry keeps its type and nothing else.
func (r *scrubber) fields() error {
	if r.s.peek() != '{' {
		return r.replace("null")
	}
	return r.s.object(func([]byte) error {
		if r.s.peek() != '{' {
			return r.replace("null")
		}
		return r.s.object(func(key []byte) error {
			if keyIs(key, "type") && r.s.peek() == '"' {
				return r.s.skipString()
			}
			return r.replace("null")
		})
	})
}

// isTimestamp reports whether a raw key names a time: it ends in -at or
// _at after a word, or in At after anything (createdAt, but not format,
// flat or chat).
// created-at and redacted-at count however they are inflected, since Parse
// reads them so.
func isTimestamp(key []byte) bool {
	n := len(key)
	if n >= 4 && key[n-2] == 'a' && key[n-1] == 't' && (key[n-3] == '-' || key[n-3] == '_') {
		return true
	}
	if n >= 3 && key[n-2] == 'A' && key[n-1] == 't' {
		return true
	}
	return keyIs(key, "createdat") || keyIs(key, "redactedat")
}

// keyEndsIn reports whether a raw key, lower-cased and without separators
// (the form keyIs compares), ends in suffix, which is in that form.
func keyEndsIn(key []byte, suffix string) bool {
	j := len(suffix)
	for i := len(key) - 1; i >= 0 && j > 0; i-- {
		c := key[i]
		if c == '-' || c == '_' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		j--
		if suffix[j] != c {
			return false
		}
	}
	return j == 0
}
