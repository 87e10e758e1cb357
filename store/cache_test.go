package store

import (
	"fmt"
	"testing"

	"github.com/personad/personad/engine"
)

// TestProjectionCacheStaysBounded: filling the cache past its bound evicts
// a tenth of it, not everything, and what stays is what was stored.
func TestProjectionCacheStaysBounded(t *testing.T) {
	p := newProjections()
	for i := range 3 * maxCachedProjections {
		id := fmt.Sprintf("inq_%d", i)
		p.loaded(id, &engine.Inquiry{ID: id, Status: engine.StatusPending})
		if len(p.m) > maxCachedProjections {
			t.Fatalf("%d entries after %d loads, bound %d", len(p.m), i+1, maxCachedProjections)
		}
	}
	if len(p.m) < maxCachedProjections*8/10 {
		t.Errorf("%d entries left, want most of %d", len(p.m), maxCachedProjections)
	}
	for id, inq := range p.m {
		if inq.ID != id {
			t.Fatalf("entry %s holds %s", id, inq.ID)
		}
	}
}
