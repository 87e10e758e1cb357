package server

import (
	"testing"

	"github.com/personad/personad/engine"
)

// TestHubHeadIsTheHighestSeq: changes of concurrent ingests are
// published out of seq order; the head never moves back, and a change
// below it wakes no feed poll.
func TestHubHeadIsTheHighestSeq(t *testing.T) {
	h := newHub(engine.New(engine.NewMemoryStore(), engine.Policy{}))
	_, moved := h.feed()
	h.publish(engine.Change{Seq: 7, InquiryID: "inq_a"})
	select {
	case <-moved:
	default:
		t.Fatal("seq 7 did not wake the feed")
	}
	head, moved := h.feed()
	h.publish(engine.Change{Seq: 6, InquiryID: "inq_b"})
	select {
	case <-moved:
		t.Error("seq 6, below the head, woke the feed")
	default:
	}
	if got, _ := h.feed(); got != 7 || head != 7 {
		t.Errorf("head %d then %d, want 7", head, got)
	}
}

// TestHubWatchesAreDropped: an inquiry's watch lasts as long as a poll
// holds it, and a change wakes only that inquiry's watchers.
func TestHubWatchesAreDropped(t *testing.T) {
	h := newHub(engine.New(engine.NewMemoryStore(), engine.Policy{}))
	nextA, doneA := h.watchInquiry("inq_a")
	nextA2, doneA2 := h.watchInquiry("inq_a")
	nextB, doneB := h.watchInquiry("inq_b")
	a, a2, b := nextA(), nextA2(), nextB()
	h.publish(engine.Change{Seq: 1, InquiryID: "inq_a"})
	for name, ch := range map[string]<-chan struct{}{"first poll on inq_a": a, "second poll on inq_a": a2} {
		select {
		case <-ch:
		default:
			t.Errorf("%s not woken by its change", name)
		}
	}
	select {
	case <-b:
		t.Error("the poll on inq_b was woken by inq_a's change")
	default:
	}
	doneA()
	doneA2()
	doneB()
	if n := len(h.inquiry); n != 0 {
		t.Errorf("%d watches left after every poll ended, want 0", n)
	}
}
