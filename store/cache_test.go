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

// TestHistoryCacheStaysBounded: logs past the bound evict a tenth of
// the cached logs, not all, and the count of cached events stays true.
func TestHistoryCacheStaysBounded(t *testing.T) {
	p := newProjections()
	ev := &engine.Event{ID: "evt_1", ObjectType: "inquiry", ObjectID: "inq"}
	for i := range maxCachedHistoryEvents {
		p.historyLoaded(fmt.Sprintf("inq_%d", i), []*engine.Event{ev, ev, ev})
		n := 0
		for _, h := range p.hist {
			n += len(h)
		}
		if n != p.histEvents || n > maxCachedHistoryEvents {
			t.Fatalf("after %d logs: %d events held, %d counted, bound %d", i+1, n, p.histEvents, maxCachedHistoryEvents)
		}
	}
	if p.histEvents < maxCachedHistoryEvents*8/10 {
		t.Errorf("%d events left, want most of %d", p.histEvents, maxCachedHistoryEvents)
	}
	p.historyLoaded("inq_huge", make([]*engine.Event, maxCachedHistoryEvents+1))
	if _, ok := p.hist["inq_huge"]; ok {
		t.Error("a log longer than the bound was cached")
	}
}
