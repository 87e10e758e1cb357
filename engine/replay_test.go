package engine_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// keepDeadLetter stores body as a dead letter, as an older personad that
// could not read it did, and returns its seq. scrubbed keeps, instead of
// body, what a redaction or retention left of it (its SHA-256 stays).
func keepDeadLetter(t *testing.T, st engine.Store, body []byte, scrubbed bool) int64 {
	t.Helper()
	d := &engine.DeadLetter{ReceivedAt: time.Date(2024, 3, 15, 18, 31, 0, 0, time.UTC), Body: body, SHA256: sha256.Sum256(body), Reason: "older personad", Deliveries: 1}
	if scrubbed {
		d.Body = []byte("null")
	}
	if err := st.Update(ctx, func(tx engine.Tx) error { _, err := tx.AppendDeadLetter(d); return err }); err != nil {
		t.Fatal(err)
	}
	return d.Seq
}

func TestReplay(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	readable := eventSpec{ID: "evt_r1", Name: engine.EventApproved, Status: "approved", Inquiry: "inq_r", At: time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)}.body()
	st := engine.NewMemoryStore()
	eng := engine.New(st, engine.Policy{})
	var changes []engine.Change
	eng.Subscribe(func(c engine.Change) { changes = append(changes, c) })
	ok := keepDeadLetter(t, st, readable, false)
	bad := keepDeadLetter(t, st, []byte(`{"data": 1}`), false)
	scrubbed := keepDeadLetter(t, st, eventSpec{ID: "evt_r2", Name: engine.EventApproved, Status: "approved", Inquiry: "inq_s", At: time.Now()}.body(), true)

	t.Run("readable", func(t *testing.T) {
		res, err := eng.Replay(ctx, ok, at)
		if err != nil {
			t.Fatal(err)
		}
		if res.EventID != "evt_r1" || res.After != engine.StatusApproved || res.Duplicate {
			t.Errorf("result %+v, want evt_r1 applied, approved", res)
		}
		d, err := eng.DeadLetter(ctx, ok)
		if err != nil || d.ReplayedEventID != "evt_r1" || !d.ReplayedAt.Equal(at) {
			t.Errorf("dead letter after replay: %+v, %v; want replayed as evt_r1 at %v", d, err, at)
		}
		if len(changes) != 1 || changes[0].EventID != "evt_r1" {
			t.Errorf("changes published: %+v, want one of evt_r1", changes)
		}
		if recs := st.AllEvents(); len(recs) != 1 || !recs[0].ReceivedAt.Equal(d.ReceivedAt) {
			t.Errorf("events %+v, want one, received when the dead letter was", recs)
		}
	})
	t.Run("twice", func(t *testing.T) {
		_, err := eng.Replay(ctx, ok, at.Add(time.Hour))
		if !errors.Is(err, engine.ErrAlreadyReplayed) {
			t.Fatalf("second replay: %v, want ErrAlreadyReplayed", err)
		}
		if got := err.Error(); !strings.Contains(got, "evt_r1") {
			t.Errorf("second replay's message %q does not name the event", got)
		}
		if d, _ := eng.DeadLetter(ctx, ok); !d.ReplayedAt.Equal(at) {
			t.Errorf("second replay moved the mark to %v", d.ReplayedAt)
		}
	})
	t.Run("still unreadable", func(t *testing.T) {
		_, err := eng.Replay(ctx, bad, at)
		var perr *engine.ParseError
		if !errors.As(err, &perr) || !errors.Is(err, engine.ErrMalformed) {
			t.Fatalf("replay: %v, want a *ParseError", err)
		}
		if d, _ := eng.DeadLetter(ctx, bad); d.Replayed() {
			t.Errorf("unreadable dead letter marked replayed: %+v", d)
		}
	})
	t.Run("scrubbed", func(t *testing.T) {
		if _, err := eng.Replay(ctx, scrubbed, at); !errors.Is(err, engine.ErrScrubbed) {
			t.Fatalf("replay: %v, want ErrScrubbed", err)
		}
		if _, err := eng.Inquiry(ctx, "inq_s"); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("scrubbed dead letter was ingested: %v", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		if _, err := eng.Replay(ctx, 99, at); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("replay: %v, want ErrNotFound", err)
		}
	})
	t.Run("event stored since", func(t *testing.T) {
		// Persona's redelivery after the upgrade stored it already: the
		// replay is a duplicate delivery, and the mark is set all the same.
		body := eventSpec{ID: "evt_r3", Name: engine.EventApproved, Status: "approved", Inquiry: "inq_d", At: time.Now()}.body()
		seq := keepDeadLetter(t, st, body, false)
		deliver(t, eng, body)
		res, err := eng.Replay(ctx, seq, at)
		if err != nil || !res.Duplicate {
			t.Fatalf("replay: %+v, %v, want a duplicate", res, err)
		}
		if d, _ := eng.DeadLetter(ctx, seq); d.ReplayedEventID != "evt_r3" {
			t.Errorf("dead letter %+v, want replayed as evt_r3", d)
		}
	})
	t.Run("pages", func(t *testing.T) {
		page, next, err := eng.DeadLetters(ctx, 0, 3)
		if err != nil || len(page) != 3 || page[0].Seq != 4 || next != 2 {
			t.Fatalf("first page %+v next %d (%v), want 4, 3, 2 and next 2", page, next, err)
		}
		page, next, err = eng.DeadLetters(ctx, next, 3)
		if err != nil || len(page) != 1 || page[0].Seq != 1 || next != 0 {
			t.Fatalf("last page %+v next %d (%v), want 1 and no next", page, next, err)
		}
		if _, _, err := eng.DeadLetters(ctx, 0, engine.MaxLimit+1); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("limit too large: %v, want ErrInvalid", err)
		}
	})
}

// markFails is a store whose replay mark fails as a concurrent replay's
// would: the event stored with it must not stay.
type markFails struct {
	*engine.MemoryStore
}

func (m markFails) Update(ctx context.Context, fn func(engine.Tx) error) error {
	return m.MemoryStore.Update(ctx, func(tx engine.Tx) error { return fn(markFailsTx{tx}) })
}

type markFailsTx struct{ engine.Tx }

func (markFailsTx) MarkDeadLetterReplayed(seq int64, _ time.Time, _ string) error {
	return fmt.Errorf("dead letter %d: %w", seq, engine.ErrAlreadyReplayed)
}

// TestReplayMarkedConcurrently: when the mark finds the dead letter
// replayed meanwhile, the replay reports ErrAlreadyReplayed, not a store
// failure, and its event is not kept.
func TestReplayMarkedConcurrently(t *testing.T) {
	st := markFails{engine.NewMemoryStore()}
	eng := engine.New(st, engine.Policy{})
	seq := keepDeadLetter(t, st, eventSpec{ID: "evt_c1", Name: engine.EventApproved, Status: "approved", Inquiry: "inq_c", At: time.Now()}.body(), false)
	_, err := eng.Replay(ctx, seq, time.Now())
	if !errors.Is(err, engine.ErrAlreadyReplayed) || errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("replay: %v, want ErrAlreadyReplayed only", err)
	}
	if recs := st.AllEvents(); len(recs) != 0 {
		t.Errorf("events kept: %d, want none", len(recs))
	}
}
