package store

import (
	"fmt"
	"testing"

	"github.com/personad/personad/engine"
)

// TestProjectionCacheKeepsTheInquiriesInProgress: past its bound the
// cache forgets the projections least recently used, so an inquiry whose
// projection was read a moment ago stays however many others pass through.
func TestProjectionCacheKeepsTheInquiriesInProgress(t *testing.T) {
	p := newProjections()
	inProgress := []string{"inq_a", "inq_b", "inq_c"}
	for _, id := range inProgress {
		p.loaded(id, &engine.Inquiry{ID: id, Status: engine.StatusPending})
	}
	for i := range 3 * maxCachedProjections {
		id := fmt.Sprintf("inq_%d", i)
		p.loaded(id, &engine.Inquiry{ID: id, Status: engine.StatusPending})
		if n := p.m.len(); n > maxCachedProjections {
			t.Fatalf("%d entries after %d loads, bound %d", n, i+1, maxCachedProjections)
		}
		if i%100 == 0 {
			for _, id := range inProgress {
				if _, ok := p.get(id); !ok {
					t.Fatalf("after %d loads, %s was evicted though used a moment ago", i+1, id)
				}
			}
		}
	}
	if n := p.m.len(); n != maxCachedProjections {
		t.Errorf("%d entries left, want the bound, %d", n, maxCachedProjections)
	}
	if _, ok := p.get("inq_0"); ok {
		t.Error("the least recently used projection is still cached")
	}
	p.m.all(func(id string, inq *engine.Inquiry) {
		if inq.ID != id {
			t.Fatalf("entry %s holds %s", id, inq.ID)
		}
	})
}

// TestHistoryCacheStaysBounded: logs past the bound evict the least
// recently used logs, a log that grows is used, and the count of cached
// events stays true.
func TestHistoryCacheStaysBounded(t *testing.T) {
	p := newProjections()
	ev := &engine.Event{ID: "evt_1", ObjectType: "inquiry", ObjectID: "inq"}
	p.historyLoaded("inq_growing", []*engine.Event{ev})
	for i := range maxCachedHistoryEvents {
		p.historyLoaded(fmt.Sprintf("inq_%d", i), []*engine.Event{ev, ev, ev})
		if i%50 == 0 {
			p.appended("inq_growing", ev, false)
		}
		n := 0
		p.hist.all(func(_ string, h []*engine.Event) { n += len(h) })
		if n != p.hist.weight || n > maxCachedHistoryEvents {
			t.Fatalf("after %d logs: %d events held, %d counted, bound %d", i+1, n, p.hist.weight, maxCachedHistoryEvents)
		}
	}
	if p.hist.weight < maxCachedHistoryEvents-3 {
		t.Errorf("%d events left, want all but a log of %d", p.hist.weight, maxCachedHistoryEvents)
	}
	if h, ok := p.history("inq_growing"); !ok || len(h) != 1+(maxCachedHistoryEvents+49)/50 {
		t.Errorf("the growing log: cached %v, %d events", ok, len(h))
	}
	if _, ok := p.history("inq_0"); ok {
		t.Error("the least recently used log is still cached")
	}
	p.historyLoaded("inq_huge", make([]*engine.Event, maxCachedHistoryEvents+1))
	if _, ok := p.history("inq_huge"); ok {
		t.Error("a log longer than the bound was cached")
	}
}
