package store

import (
	"hash/fnv"
	"testing"
)

// TestEventKeyIsFNV1a: the event key is hash/fnv's 64-bit FNV-1a of the
// id, which files migrated to version 11 hold and Verify checks.
func TestEventKeyIsFNV1a(t *testing.T) {
	for _, id := range []string{"", "evt_ckZNxnMRgtf55bHl27ozUiwW", "evt_\u00e9\u4e2d", string([]byte{0, 255, 128})} {
		h := fnv.New64a()
		h.Write([]byte(id))
		if got, want := fnv1a64(id), int64(h.Sum64()); got != want {
			t.Errorf("fnv1a64(%q) = %d, want %d", id, got, want)
		}
	}
}
