package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

var eventNames = []string{
	engine.EventCreated, engine.EventStarted, engine.EventExpired, engine.EventCompleted,
	engine.EventFailed, engine.EventMarkedForReview, engine.EventApproved, engine.EventDeclined,
	engine.EventTransitioned, engine.EventUpdatedTags, engine.EventRedacted,
	engine.EventReusablePersonaCreate, engine.EventReusablePersonaUsed, "inquiry.escalated",
}

// eventFrom builds an event from a few random choices. Times fall in a
// narrow window so that ties, which the fold breaks by rank and id, occur.
func eventFrom(id int, name, status, minute, flags uint8) *engine.Event {
	statuses := append(slices.Clone(engine.Statuses), "", "", "archived")
	ev := &engine.Event{
		ID:         fmt.Sprintf("evt_%03d", id),
		Name:       eventNames[int(name)%len(eventNames)],
		CreatedAt:  time.Date(2024, 3, 15, 18, int(minute%8), 0, 0, time.UTC),
		ObjectType: "inquiry", ObjectID: "inq_f",
	}
	ev.Inquiry.Status = statuses[int(status)%len(statuses)]
	ev.Inquiry.CreatedAt = time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC) // as bodyOf renders it
	if flags&1 != 0 {
		ev.Inquiry.RedactedAt = ev.CreatedAt
	}
	if flags&2 != 0 {
		ev.Inquiry.Tags = []string{fmt.Sprintf("t%d", flags>>2)}
	}
	if flags&4 != 0 {
		ev.Inquiry.ReferenceID = fmt.Sprintf("ref-%d", flags>>3)
	}
	return ev
}

func randomHistory(rng *rand.Rand, n int) []*engine.Event {
	events := make([]*engine.Event, n)
	for i := range events {
		events[i] = eventFrom(i, uint8(rng.UintN(256)), uint8(rng.UintN(256)), uint8(rng.UintN(256)), uint8(rng.UintN(256)))
	}
	return events
}

// withDuplicates returns events shuffled, with some repeated.
func withDuplicates(rng *rand.Rand, events []*engine.Event) []*engine.Event {
	out := slices.Clone(events)
	for range rng.IntN(len(events) + 1) {
		out = append(out, events[rng.IntN(len(events))])
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func foldJSON(t testing.TB, events []*engine.Event) string {
	t.Helper()
	inq, steps := engine.Fold("inq_f", events, engine.Policy{AutoDecide: true})
	b, err := json.Marshal(struct {
		Inquiry *engine.Inquiry
		Steps   []engine.Step
	}{inq, steps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFoldOrderIndependence: for random histories, every shuffled delivery
// with duplicates folds to the same projection and the same outcomes.
func TestFoldOrderIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 300 {
		events := randomHistory(rng, 1+rng.IntN(12))
		want := foldJSON(t, events)
		for range 10 {
			if got := foldJSON(t, withDuplicates(rng, events)); got != want {
				t.Fatalf("order changes the fold\n got  %s\n want %s", got, want)
			}
		}
	}
}

// TestIngestEqualsFold: delivering a history to the engine in any order,
// with duplicates, leaves the projection the fold of the distinct events,
// whether the engine took the in-order step or re-folded.
func TestIngestEqualsFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	ctx := context.Background()
	for range 200 {
		events := randomHistory(rng, 1+rng.IntN(10))
		want, _ := engine.Fold("inq_f", events, engine.Policy{})
		eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
		for _, ev := range withDuplicates(rng, events) {
			if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodyOf(ev), ReceivedAt: ev.CreatedAt}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := eng.Inquiry(ctx, "inq_f")
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Fatalf("ingested projection differs from the fold\n got  %s\n want %s", g, w)
		}
	}
}

// bodyOf renders an event as a webhook body.
func bodyOf(ev *engine.Event) []byte {
	spec := eventSpec{ID: ev.ID, Name: ev.Name, Status: string(ev.Inquiry.Status), At: ev.CreatedAt, Inquiry: ev.ObjectID,
		Ref: ev.Inquiry.ReferenceID, Tags: ev.Inquiry.Tags}
	if !ev.Inquiry.RedactedAt.IsZero() {
		spec.RedactedAt = ev.Inquiry.RedactedAt.Format(time.RFC3339Nano)
	}
	return spec.body()
}

func TestFoldRules(t *testing.T) {
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	ev := func(id, name string, status engine.Status, minute int) *engine.Event {
		e := &engine.Event{ID: id, Name: name, CreatedAt: t0.Add(time.Duration(minute) * time.Minute), ObjectType: "inquiry", ObjectID: "inq"}
		e.Inquiry.Status = status
		return e
	}
	tests := []struct {
		name     string
		events   []*engine.Event
		policy   engine.Policy
		status   engine.Status
		decision engine.Status
		last     engine.Outcome
	}{
		{"first event adopts its status", []*engine.Event{ev("e1", engine.EventApproved, "approved", 0)}, engine.Policy{}, "approved", "approved", engine.OutcomeApplied},
		{"completed undecided without policy", []*engine.Event{ev("e1", engine.EventCreated, "created", 0), ev("e2", engine.EventCompleted, "completed", 1)}, engine.Policy{}, "completed", "", engine.OutcomeInferred},
		{"auto-decide approves completed", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventCompleted, "completed", 1)}, engine.Policy{AutoDecide: true}, "completed", "approved", engine.OutcomeApplied},
		{"auto-decide declines failed", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventFailed, "failed", 1)}, engine.Policy{AutoDecide: true}, "failed", "declined", engine.OutcomeApplied},
		{"needs_review is a decision", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventMarkedForReview, "needs_review", 1)}, engine.Policy{}, "needs_review", "needs_review", engine.OutcomeApplied},
		{"nothing returns to created", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventCreated, "created", 1)}, engine.Policy{}, "pending", "", engine.OutcomeRejected},
		{"completed cannot resume", []*engine.Event{ev("e1", engine.EventCompleted, "completed", 0), ev("e2", engine.EventTransitioned, "pending", 1)}, engine.Policy{}, "completed", "", engine.OutcomeRejected},
		{"tags event keeps status", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventUpdatedTags, "pending", 1)}, engine.Policy{}, "pending", "", engine.OutcomeUnchanged},
		{"status-less event changes nothing", []*engine.Event{ev("e1", engine.EventStarted, "pending", 0), ev("e2", engine.EventTransitioned, "", 1)}, engine.Policy{}, "pending", "", engine.OutcomeUnchanged},
		{"blank status falls back to the name", []*engine.Event{ev("e1", engine.EventStarted, "", 0), ev("e2", engine.EventDeclined, "", 1)}, engine.Policy{}, "declined", "declined", engine.OutcomeApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inq, steps := engine.Fold("inq", tt.events, tt.policy)
			if inq.Status != tt.status || inq.Decision != tt.decision || steps[len(steps)-1].Outcome != tt.last {
				t.Errorf("status=%q decision=%q last=%q; want %q %q %q", inq.Status, inq.Decision, steps[len(steps)-1].Outcome, tt.status, tt.decision, tt.last)
			}
		})
	}
}

// FuzzFold: any set of events (four bytes each, see eventFrom) folds
// without panicking into a consistent projection, and the same set folds
// identically in reverse, rotated, with every event twice, shuffled with
// duplicates (the shuffle seeded by the fuzzer), or with its last event
// applied on top of the fold of the others when that event sorts last.
// Seeds: testdata/fuzz/FuzzFold.
func FuzzFold(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 1, 1, 6, 6, 3, 0}, uint64(1))
	f.Add([]byte{10, 7, 2, 3, 2, 8, 5, 1, 13, 12, 4, 255, 9, 1, 1, 6}, uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, shuffle uint64) {
		var events []*engine.Event
		for i := 0; i+4 <= len(data) && i < 4*40; i += 4 {
			events = append(events, eventFrom(i/4, data[i], data[i+1], data[i+2], data[i+3]))
		}
		if len(events) == 0 {
			return
		}
		p := engine.Policy{AutoDecide: true}
		inq, steps := engine.Fold("inq_f", events, p)
		checkFold(t, inq, steps, len(events))

		want := foldJSON(t, events)
		rev := slices.Clone(events)
		slices.Reverse(rev)
		rot := append(slices.Clone(events[len(events)/2:]), events[:len(events)/2]...)
		twice := append(slices.Clone(events), events...)
		shuffled := withDuplicates(rand.New(rand.NewPCG(shuffle, 0)), events)
		for _, order := range [][]*engine.Event{rev, rot, twice, shuffled} {
			if got := foldJSON(t, order); got != want {
				t.Fatalf("order changes the fold\n got  %s\n want %s", got, want)
			}
		}

		last := events[len(events)-1]
		incr, _ := engine.Fold("inq_f", events[:len(events)-1], p)
		if incr.After(last) {
			incr.Apply(last, p)
			if !reflect.DeepEqual(incr, inq) {
				t.Fatalf("Apply on top differs from the fold\n got  %+v\n want %+v", incr, inq)
			}
		}
	})
}

// checkFold fails unless a fold of n distinct events is consistent: one
// step per event, each starting where the previous ended, only transitions
// the lifecycle permits applied, and the projection agreeing with its steps.
func checkFold(t *testing.T, inq *engine.Inquiry, steps []engine.Step, n int) {
	t.Helper()
	if inq.EventCount != n || len(steps) != n {
		t.Fatalf("event_count %d, steps %d, want %d", inq.EventCount, len(steps), n)
	}
	from := engine.Status("")
	for _, s := range steps {
		if s.From != from {
			t.Fatalf("step %+v starts from %q, the previous step ended at %q", s, s.From, from)
		}
		from = s.To
		if s.Outcome == engine.OutcomeApplied && s.From != "" && s.From != s.To {
			if _, ok := engine.Transition(s.From, s.To); !ok {
				t.Fatalf("applied a transition the lifecycle forbids: %+v", s)
			}
		}
	}
	last := steps[len(steps)-1]
	switch {
	case inq.Status != last.To || inq.LastEventID != last.EventID:
		t.Fatalf("projection status %q, last event %q; last step %+v", inq.Status, inq.LastEventID, last)
	case inq.Status != "" && !inq.Status.Known():
		t.Fatalf("projection has unknown status %q", inq.Status)
	case inq.Redacted == inq.RedactedAt.IsZero():
		t.Fatalf("redacted %v with redacted-at %v", inq.Redacted, inq.RedactedAt)
	case inq.Redacted && len(inq.Tags) > 0:
		t.Fatalf("redacted inquiry keeps tags %q", inq.Tags)
	}
}

func TestCloneIsDeep(t *testing.T) {
	inq := &engine.Inquiry{ID: "i", Tags: []string{"a"}, Anomalies: []engine.Anomaly{{Kind: "k"}}}
	c := inq.Clone()
	c.Tags[0], c.Anomalies[0].Kind = "b", "x"
	if !reflect.DeepEqual(inq.Tags, []string{"a"}) || inq.Anomalies[0].Kind != "k" {
		t.Error("Clone shares memory with the original")
	}
}
