package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects the scanner accepts, so
// a hostile body cannot exhaust the stack.
const maxDepth = 64

// errSyntax, errDepth and errUTF8 describe why a body is not JSON personad
// accepts. The scanner is stricter than encoding/json in two ways: strings
// must be valid UTF-8 (RFC 8259 §8.1) and nesting is bounded.
var (
	errSyntax = errors.New("invalid JSON")
	errDepth  = errors.New("JSON nested too deeply")
	errUTF8   = errors.New("invalid UTF-8 in JSON string")
)

// scanner walks JSON bytes in one pass without building a tree. Callers pull
// exactly the members they need and skip (while validating) everything else,
// which keeps parsing a 4 KB Persona body to a handful of allocations.
type scanner struct {
	buf   []byte
	pos   int
	depth int
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end of input.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.buf) {
		return 0
	}
	return s.buf[s.pos]
}

// end reports an error unless only white space remains.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.buf) {
		return errSyntax
	}
	return nil
}

// object iterates the members of the object at the cursor. For each member
// it passes the key to fn (the bytes between the quotes, decoded only when
// they hold escapes), which must consume the member's value (with skip,
// str, object, ...).
func (s *scanner) object(fn func(key []byte) error) error {
	if s.peek() != '{' {
		return errSyntax
	}
	if s.depth++; s.depth > maxDepth {
		return errDepth
	}
	s.pos++
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if s.peek() != '"' {
			return errSyntax
		}
		start := s.pos
		escaped, err := s.stringBounds()
		if err != nil {
			return err
		}
		key := s.buf[start+1 : s.pos-1]
		if escaped {
			// Rare: "\u0069d" is the key "id" and must match like it.
			var k string
			if json.Unmarshal(s.buf[start:s.pos], &k) != nil {
				return errSyntax
			}
			key = []byte(k)
		}
		if s.peek() != ':' {
			return errSyntax
		}
		s.pos++
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// array iterates the elements of the array at the cursor; fn must consume
// each element.
func (s *scanner) array(fn func() error) error {
	if s.peek() != '[' {
		return errSyntax
	}
	if s.depth++; s.depth > maxDepth {
		return errDepth
	}
	s.pos++
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return errSyntax
		}
	}
}

// skip validates and steps over one value of any kind.
func (s *scanner) skip() error {
	switch s.peek() {
	case '{':
		return s.object(s.skipMember)
	case '[':
		return s.array(s.skip)
	case '"':
		return s.skipString()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *scanner) skipMember([]byte) error { return s.skip() }

func (s *scanner) literal(lit string) error {
	if len(s.buf)-s.pos < len(lit) || string(s.buf[s.pos:s.pos+len(lit)]) != lit {
		return errSyntax
	}
	s.pos += len(lit)
	return nil
}

// null consumes a null literal if one is at the cursor and reports whether
// it did.
func (s *scanner) null() bool {
	if s.peek() == 'n' && s.literal("null") == nil {
		return true
	}
	return false
}

func (s *scanner) number() error {
	b, i := s.buf, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return errSyntax
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.pos = i
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipString validates the string at the cursor and steps past its closing
// quote.
func (s *scanner) skipString() error {
	_, err := s.stringBounds()
	return err
}

// stringBounds validates the string at the cursor, steps past it and
// returns whether it holds escape sequences.
func (s *scanner) stringBounds() (escaped bool, err error) {
	b := s.buf
	if s.pos >= len(b) || b[s.pos] != '"' {
		return false, errSyntax
	}
	start := s.pos + 1
	ascii := true
	for i := start; i < len(b); i++ {
		i = plainRun(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:i]) {
				return false, errUTF8
			}
			s.pos = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return false, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return false, errSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return false, errSyntax
					}
				}
				i += 4
			default:
				return false, errSyntax
			}
		case c < 0x20:
			return false, errSyntax
		case c >= 0x80:
			ascii = false
		}
	}
	return false, errSyntax
}

// plainRun returns the index of the first byte at or after i that is not
// plain string content (a quote, a backslash, a control character or a
// non-ASCII byte), testing eight bytes at a time: most of a Persona body
// is string content.
func plainRun(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ ('"' * ones)   // a zero byte where b has '"'
		bs := x ^ ('\\' * ones) // and where it has '\\'
		// A byte's high bit ends up set when it is below 0x20, zero in
		// q or bs, or has its own high bit set.
		if ((x-0x20*ones)|(q-ones)|(bs-ones)|x)&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			break
		}
	}
	return i
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// str decodes the string at the cursor.
func (s *scanner) str() (string, error) {
	start := s.pos
	escaped, err := s.stringBounds()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(s.buf[start+1 : s.pos-1]), nil
	}
	var v string // rare: let encoding/json apply the escape rules
	if err := json.Unmarshal(s.buf[start:s.pos], &v); err != nil {
		return "", errSyntax
	}
	return v, nil
}

// keyIs reports whether a raw object key names want, whatever Persona's key
// inflection: kebab-case, snake_case and camelCase keys all match the same
// want, which is written in lower case without separators ("createdat").
func keyIs(key []byte, want string) bool {
	j := 0
	for _, c := range key {
		if c == '-' || c == '_' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}
