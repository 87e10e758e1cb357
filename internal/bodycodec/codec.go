// Package bodycodec is how personad keeps a webhook body on disk: a tag
// byte that names the encoding, then the body in it. Encode compresses
// with S2 (github.com/klauspost/compress/s2) primed with a dictionary
// made from Persona's own example bodies, which share most of their
// keys and structure with every body Persona sends; Decode gives back the
// body, byte for byte.
//
// The dictionary, dict-v1.txt, is Persona's example bodies
// (testdata/persona, from Persona's OpenAPI specification; its README
// says where exactly) as mkdict chose them: go generate makes it again,
// and a test fails when the committed file is not what mkdict makes.
//
// The tag makes the format open: a later dictionary gets a new tag and
// the old one stays decodable, and a stored value of a tag this build
// does not know is an error (ErrUnknownTag), never a guess or a panic.
package bodycodec

//go:generate go run ./mkdict -o dict-v1.txt ../../testdata/persona

import (
	_ "embed"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// The tags, the first byte of every stored body.
const (
	// TagRaw: the body follows as it is. Encode keeps a body raw when S2
	// would not make it shorter (an empty or tiny body, random bytes) or
	// when it is longer than MaxCompressedLen.
	TagRaw byte = 0x00
	// TagS2DictV1: an S2 block encoded with the dictionary dict-v1.txt.
	TagS2DictV1 byte = 0x01
)

// MaxCompressedLen is the longest body Encode compresses, and so the
// longest Decode expands: a block claiming more is corrupt, so that a
// damaged length can never make Decode allocate gigabytes. Persona's
// bodies are a few kilobytes; the server refuses more than 1 MiB unless
// told otherwise, and a longer body is kept raw.
const MaxCompressedLen = 16 << 20

// ErrUnknownTag is Decode's error for a stored value whose tag byte this
// build does not know (written by a newer personad, or damaged).
var ErrUnknownTag = errors.New("bodycodec: unknown body encoding")

// ErrCorrupt is Decode's error for a value whose tag is known but whose
// content does not decode.
var ErrCorrupt = errors.New("bodycodec: corrupt encoded body")

// dictV1Text is dict-v1.txt: see mkdict, which makes it, and
// TestDictionaryIsWhatMkdictMakes, which keeps it so.
//
//go:embed dict-v1.txt
var dictV1Text []byte

// DictV1SearchStart is how every Persona body begins: S2 starts its
// repeat offset at the last place the dictionary has it.
const DictV1SearchStart = `{"data":{"type":"event","id":"evt_`

var dictV1 = mustDict(dictV1Text)

func mustDict(text []byte) *s2.Dict {
	d := s2.MakeDict(text, []byte(DictV1SearchStart))
	if d == nil {
		panic("bodycodec: the embedded dictionary is not usable by s2")
	}
	return d
}

// Encode returns body in its stored form, appended to dst[:0] (nil dst
// allocates). It never fails, and Decode gives body back.
func Encode(dst, body []byte) []byte {
	dst = dst[:0]
	if len(body) > 0 && len(body) <= MaxCompressedLen {
		if n := s2.MaxEncodedLen(len(body)) + 1; cap(dst) < n {
			dst = make([]byte, 0, n)
		}
		dst = append(dst, TagS2DictV1)
		enc := dictV1.Encode(dst[1:cap(dst)], body)
		if len(enc) < len(body) {
			return dst[:1+len(enc)]
		}
		dst = dst[:0]
	}
	return append(append(dst, TagRaw), body...)
}

// Decode returns the body a stored value holds. Errors: ErrUnknownTag for
// a value without a tag this build knows (the empty value included),
// ErrCorrupt for one that does not decode. The result may share memory
// with stored (a raw body does).
func Decode(stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("%w: the stored value is empty, with no tag", ErrUnknownTag)
	}
	switch tag, rest := stored[0], stored[1:]; tag {
	case TagRaw:
		return rest, nil
	case TagS2DictV1:
		n, err := s2.DecodedLen(rest)
		if err != nil || n > MaxCompressedLen {
			return nil, fmt.Errorf("%w: bad block length", ErrCorrupt)
		}
		body, err := dictV1.Decode(nil, rest)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return body, nil
	default:
		return nil, fmt.Errorf("%w: tag %#02x", ErrUnknownTag, tag)
	}
}
