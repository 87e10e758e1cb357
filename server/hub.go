package server

import (
	"sync"

	"github.com/personad/personad/engine"
)

// hub wakes long polls from the engine's committed changes: a decision
// poll only when its own inquiry changes (a decision changes only
// through a change), a feed poll when the feed's head moves past its
// cursor. Parked polls cost nothing per change that does not concern
// them, where re-reading the store on every change would cost one query
// per parked poll.
type hub struct {
	mu      sync.Mutex
	head    int64         // the highest seq published
	moved   chan struct{} // closed and replaced when head moves
	inquiry map[string]*watch
}

// watch is the waiters of one inquiry: changed is closed at the
// inquiry's next change; n counts the polls holding it.
type watch struct {
	changed chan struct{}
	n       int
}

func newHub(eng *engine.Engine) *hub {
	h := &hub{moved: make(chan struct{}), inquiry: map[string]*watch{}}
	// Never cancelled: an API handler lives as long as its engine.
	eng.Subscribe(h.publish)
	return h
}

// publish is the engine subscription: it runs after the change is
// durable and must not block. Changes of concurrent ingests can arrive
// out of seq order, so the head is the highest seen; every change up to
// it is committed, since each is committed before it is published and
// seqs are assigned in commit order.
func (h *hub) publish(c engine.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.Seq > h.head {
		h.head = c.Seq
		close(h.moved)
		h.moved = make(chan struct{})
	}
	if w := h.inquiry[c.InquiryID]; w != nil {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// feed returns the head and a channel closed when it next moves. Take it
// before reading the store, so that no change is missed in between.
func (h *hub) feed() (head int64, moved <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, h.moved
}

// watchInquiry registers a poll on one inquiry. next returns a channel
// closed at the inquiry's next change (call it before reading the store);
// done unregisters the poll.
func (h *hub) watchInquiry(id string) (next func() <-chan struct{}, done func()) {
	h.mu.Lock()
	w := h.inquiry[id]
	if w == nil {
		w = &watch{changed: make(chan struct{})}
		h.inquiry[id] = w
	}
	w.n++
	h.mu.Unlock()
	next = func() <-chan struct{} {
		h.mu.Lock()
		defer h.mu.Unlock()
		return w.changed
	}
	done = func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if w.n--; w.n == 0 {
			delete(h.inquiry, id)
		}
	}
	return next, done
}
