package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// SameContent reports whether body, delivered under the id of a stored
// event, says what the stored body says: the same JSON in another key
// inflection (Persona inflects every key per webhook, so two webhooks
// pointed at personad deliver each event in two spellings), with other
// whitespace or key order. stored may have been scrubbed since it arrived
// (a redaction, retention), so body counts as the same when one of the
// scrubs makes it so. Anything else is a conflict: the first body stands.
//
// It runs only when the SHA-256s differ, which is rare, so it can afford
// to decode both bodies.
func SameContent(stored, body []byte) bool {
	want, ok := content(stored)
	if !ok {
		return false
	}
	for _, scrub := range []func([]byte) ([]byte, error){nil, ScrubForRetention, Scrub, ScrubAll} {
		b := body
		if scrub != nil {
			var err error
			if b, err = scrub(body); err != nil {
				return false
			}
		}
		if got, ok := content(b); ok && bytes.Equal(got, want) {
			return true
		}
	}
	return false
}

// content returns body's JSON with every object key folded to its
// lowercased letters and digits ("created-at", "created_at" and
// "createdAt" are all "createdat") and re-encoded in key order. ok is
// false when body is not JSON, or when two keys of one object fold alike
// (then no spelling-blind comparison is sound).
func content(body []byte) (canon []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	if v, ok = foldKeys(v); !ok {
		return nil, false
	}
	canon, err := json.Marshal(v)
	return canon, err == nil
}

func foldKeys(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			f := strings.Map(func(r rune) rune {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					return unicode.ToLower(r)
				}
				return -1
			}, k)
			if _, dup := out[f]; dup {
				return nil, false
			}
			var ok bool
			if out[f], ok = foldKeys(val); !ok {
				return nil, false
			}
		}
		return out, true
	case []any:
		for i := range x {
			var ok bool
			if x[i], ok = foldKeys(x[i]); !ok {
				return nil, false
			}
		}
	}
	return v, true
}
