package engine_test

import (
	"bytes"
	"encoding/json"
	"strings"
)

// jsonDoc is a JSON value decoded with each object's members kept in order,
// duplicates included, so that a body can be written again with its keys
// inflected or its members reversed and nothing else changed. (A map loses
// both order and duplicates, and with them which of two members wins.)
type jsonDoc struct {
	kind    byte // '{' object, '[' array, 0 scalar
	members []jsonMember
	elems   []jsonDoc
	scalar  any // string, json.Number, bool or nil
}

type jsonMember struct {
	key   string
	value jsonDoc
}

// decodeDoc decodes one JSON value; body must be valid JSON.
func decodeDoc(body []byte) (jsonDoc, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep numbers as written
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (jsonDoc, error) {
	tok, err := dec.Token()
	if err != nil {
		return jsonDoc{}, err
	}
	switch tok {
	case json.Delim('{'):
		d := jsonDoc{kind: '{'}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return d, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return d, err
			}
			d.members = append(d.members, jsonMember{key.(string), v})
		}
		_, err := dec.Token()
		return d, err
	case json.Delim('['):
		d := jsonDoc{kind: '['}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return d, err
			}
			d.elems = append(d.elems, v)
		}
		_, err := dec.Token()
		return d, err
	}
	return jsonDoc{scalar: tok}, nil
}

// render writes d as compact JSON, every key passed through inflect and,
// with reverse, every object's members listed last to first.
func (d jsonDoc) render(inflect func(string) string, reverse bool) []byte {
	var buf bytes.Buffer
	d.write(&buf, inflect, reverse)
	return buf.Bytes()
}

func (d jsonDoc) write(buf *bytes.Buffer, inflect func(string) string, reverse bool) {
	switch d.kind {
	case '{':
		buf.WriteByte('{')
		for i := range d.members {
			m := d.members[i]
			if reverse {
				m = d.members[len(d.members)-1-i]
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			writeScalar(buf, inflect(m.key))
			buf.WriteByte(':')
			m.value.write(buf, inflect, reverse)
		}
		buf.WriteByte('}')
	case '[':
		buf.WriteByte('[')
		for i, e := range d.elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			e.write(buf, inflect, reverse)
		}
		buf.WriteByte(']')
	default:
		writeScalar(buf, d.scalar)
	}
}

func writeScalar(buf *bytes.Buffer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // decoded scalars always re-encode
	}
	buf.Write(b)
}

// hasSameKeyTwice reports whether some object in d holds two members whose
// keys name the same thing once inflection is ignored. Which of the two a
// reader keeps depends on their order, so such bodies are not expected to
// read the same with their members reversed.
func (d jsonDoc) hasSameKeyTwice() bool {
	seen := map[string]bool{}
	for _, m := range d.members {
		k := normalizeKey(m.key)
		if seen[k] || m.value.hasSameKeyTwice() {
			return true
		}
		seen[k] = true
	}
	for _, e := range d.elems {
		if e.hasSameKeyTwice() {
			return true
		}
	}
	return false
}

// normalizeKey drops the separators and ASCII case that Persona's key
// inflections differ in: created-at, created_at and createdAt all give
// "createdat".
func normalizeKey(key string) string {
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '-' || c == '_':
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Persona's three key inflections. Each keeps a key's words and changes
// only how they are joined, so any key can be put into any of the three.
func kebabCase(key string) string { return inflect(key, '-') }
func snakeCase(key string) string { return inflect(key, '_') }
func camelCase(key string) string { return inflect(key, 0) }

// inflect joins the words of key with sep, or in camelCase when sep is 0.
// Words are separated by '-', '_' or an upper-case ASCII letter.
func inflect(key string, sep byte) string {
	var b strings.Builder
	upperNext := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '-' || c == '_':
			if sep != 0 {
				b.WriteByte(sep)
			}
			upperNext = sep == 0
			continue
		case sep != 0 && c >= 'A' && c <= 'Z':
			b.WriteByte(sep)
			c += 'a' - 'A'
		case upperNext && c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		upperNext = false
		b.WriteByte(c)
	}
	return b.String()
}
