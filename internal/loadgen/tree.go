package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// The fixtures are read once into trees of JSON values that keep their
// members in order, so that generated bodies look like the fixtures member
// for member. A tree value is nil, bool, string, json.Number, []any or
// object. Trees read from the templates are shared and never changed: a
// body is made by copying the objects along the paths it changes (clone,
// then set on the copy).

// object is a JSON object that keeps its members in order.
type object []member

type member struct {
	key   string
	value any
}

// get returns the value of key, or nil when absent.
func (o object) get(key string) any {
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// obj returns the object at key; it panics when there is none, which for a
// template read at start-up is a programming error.
func (o object) obj(key string) object {
	v, ok := o.get(key).(object)
	if !ok {
		panic(fmt.Sprintf("loadgen: template has no object %q", key))
	}
	return v
}

// clone returns a copy of o's member list; the values are shared.
func (o object) clone() object { return append(object(nil), o...) }

// set replaces the value of key in place, or appends the member. Call it
// only on an object that is not shared (a clone).
func (o *object) set(key string, v any) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = v
			return
		}
	}
	*o = append(*o, member{key, v})
}

// with returns a copy of o with key set to v.
func (o object) with(key string, v any) object {
	c := o.clone()
	c.set(key, v)
	return c
}

// ref is a JSON:API resource identifier, {"id": …, "type": …}.
func ref(id, typ string) object { return object{{"id", id}, {"type", typ}} }

// strs turns a string slice into tree values.
func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// decodeTree reads one JSON document into a tree.
func decodeTree(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("loadgen: data after the JSON document")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{k.(string), v})
		}
		_, err := dec.Token() // '}'
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return tok, nil // nil, bool, string or json.Number
}

// appendJSON writes v compactly, as Persona sends bodies.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case string:
		return appendString(b, v)
	case []any:
		return appendArray(b, v)
	case []object:
		return appendArray(b, v)
	case object:
		b = append(b, '{')
		for i, m := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.key)
			b = append(b, ':')
			b = appendJSON(b, m.value)
		}
		return append(b, '}')
	}
	panic(fmt.Sprintf("loadgen: cannot write %T as JSON", v))
}

const hexDigits = "0123456789abcdef"

// plain reports whether s is printable ASCII with nothing to escape, as
// nearly every string of a body is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendString writes s as a JSON string. Templates and generated values
// are valid UTF-8; invalid bytes are replaced, as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	if plain(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

func appendArray[E any](b []byte, v []E) []byte {
	b = append(b, '[')
	for i, e := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(b, e)
	}
	return append(b, ']')
}
