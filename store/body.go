package store

import (
	"fmt"

	"github.com/personad/personad/internal/bodycodec"
)

// From schema version bodiesEncodedVersion on, every body column
// (events.body, conflicts.body, dead_letters.body) holds a body in
// bodycodec's form: a tag byte, then the body raw or S2-compressed with a
// dictionary of Persona's bodies. Every read of a body decodes it, and
// every write encodes it; the SHA-256 and the hash chain stay those of
// the body as received. Conflicts and dead letters are encoded like
// events, although they are rare enough that their bytes hardly matter:
// one format for every body column means no read can mistake which one it
// holds, and a privacy scan decodes them all alike.
const bodiesEncodedVersion = 11

// EncodeBody is engine.BodyEncoder: the engine calls it in the delivering
// goroutine, beside the SHA-256, so that the writer, which runs every
// unit of work one after the other, does not compress.
func (db *DB) EncodeBody(body []byte) []byte { return bodycodec.Encode(nil, body) }

// encodeBody is a body's stored form, in the writer's transaction: in a
// migration step of a version before bodiesEncodedVersion, the body as
// it is, as that version stored it.
func (t *tx) encodeBody(body []byte) []byte {
	if t.rawBodies {
		return blob(body)
	}
	return bodycodec.Encode(nil, body)
}

// decodeBody is encodeBody's inverse.
func (t *tx) decodeBody(stored []byte) ([]byte, error) {
	if t.rawBodies {
		return stored, nil
	}
	return decodeBody(stored)
}

// decodeBody returns the body a stored value holds. Errors: the file
// holds a body this build cannot read (bodycodec.ErrUnknownTag,
// bodycodec.ErrCorrupt), which is corruption or a newer personad's
// encoding.
func decodeBody(stored []byte) ([]byte, error) {
	body, err := bodycodec.Decode(stored)
	if err != nil {
		return nil, fmt.Errorf("store: a stored body does not decode: %w", err)
	}
	return body, nil
}

// eventKey is events.event_key: a 64-bit hash (FNV-1a) of an event id.
// The dedup lookup finds an event by its key, in an index of 8-byte
// keys far denser than one of 30-byte ids, and compares the id itself,
// so that two ids of one key are two events. A variable, so that a test
// can force a collision.
var eventKey = fnv1a64

// fnv1a64 is FNV-1a over s's bytes, as hash/fnv's New64a gives it,
// without the hasher and the []byte copy that one costs every delivery.
func fnv1a64(s string) int64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return int64(h)
}
