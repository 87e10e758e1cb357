package loadgen_test

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
)

var update = flag.Bool("update", false, "copy the fixtures of testdata/events into templates/")

// TestTemplatesMatchFixtures keeps the embedded templates equal to the
// fixtures they were copied from.
func TestTemplatesMatchFixtures(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("templates", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, name := range names {
		fixture := filepath.Join("..", "..", "testdata", "events", filepath.Base(name))
		want, err := os.ReadFile(fixture)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s; run go test ./internal/loadgen -update", name, fixture)
		}
	}
}

// generated is one inquiry's emitted events, parsed.
type generated struct {
	inq    *loadgen.Inquiry
	events []*engine.Event // inquiry events, in emission order
	others int
}

// generate runs a generator to its end and parses every body; it panics
// when t is nil and a body is wrong.
func generate(t *testing.T, cfg loadgen.Config) ([]*loadgen.Event, []*generated) {
	fatalf := func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
	if t != nil {
		t.Helper()
		fatalf = t.Fatalf
	}
	g := loadgen.New(cfg)
	var events []*loadgen.Event
	var inqs []*generated
	byNumber := map[int]*generated{}
	for ev := g.Next(); ev != nil; ev = g.Next() {
		events = append(events, ev)
		gi := byNumber[ev.Inquiry.Number]
		if gi == nil {
			gi = &generated{inq: ev.Inquiry}
			byNumber[ev.Inquiry.Number] = gi
			inqs = append(inqs, gi)
		}
		parsed, err := engine.Parse(ev.Body)
		if err != nil {
			fatalf("%s %s does not parse: %v\n%s", ev.Name, ev.ID, err, ev.Body)
		}
		if parsed.ID != ev.ID || parsed.Name != ev.Name || !parsed.CreatedAt.Equal(ev.CreatedAt) || parsed.ObjectType != ev.ObjectType {
			fatalf("parsed %+v, generated %s %s %s %s", parsed, ev.ID, ev.Name, ev.CreatedAt, ev.ObjectType)
		}
		if !ev.IsInquiry() {
			if ev.Step != -1 || parsed.IsInquiry() {
				fatalf("%s: step %d, parsed as an inquiry event %v", ev.Name, ev.Step, parsed.IsInquiry())
			}
			gi.others++
			continue
		}
		if parsed.ObjectID != ev.Inquiry.ID || !parsed.Inquiry.Status.Known() {
			fatalf("%s: inquiry %q status %q, want %s and a known status", ev.Name, parsed.ObjectID, parsed.Inquiry.Status, ev.Inquiry.ID)
		}
		if ev.Step != len(gi.events) || ev.Step >= loadgen.MaxInquiryEvents {
			fatalf("%s: step %d, want %d", ev.Name, ev.Step, len(gi.events))
		}
		gi.events = append(gi.events, parsed)
	}
	return events, inqs
}

func TestDeterministicBySeed(t *testing.T) {
	digest := func(seed uint64) [32]byte {
		g := loadgen.New(loadgen.Config{Seed: seed, Events: 1500})
		h := sha256.New()
		for ev := g.Next(); ev != nil; ev = g.Next() {
			h.Write(ev.Body)
		}
		return [32]byte(h.Sum(nil))
	}
	if digest(7) != digest(7) {
		t.Error("the same seed gave different streams")
	}
	if digest(7) == digest(8) {
		t.Error("different seeds gave the same stream")
	}
}

// streamOf8k is one 8,000-event stream, generated once for the tests
// that only read it.
var streamOf8k = sync.OnceValues(func() ([]*loadgen.Event, []*generated) {
	return generate(nil, loadgen.Config{Seed: 3, Events: 8000})
})

func TestBodies(t *testing.T) {
	const n = 8000
	events, inqs := streamOf8k()
	if len(events) != n {
		t.Fatalf("%d events, want %d", len(events), n)
	}
	total, others := 0, 0
	ids := map[string]bool{}
	for _, ev := range events {
		if size := len(ev.Body); size < loadgen.MinBodySize || size > loadgen.MaxBodySize {
			t.Errorf("%s %s: %d bytes, want %d to %d", ev.Name, ev.ID, size, loadgen.MinBodySize, loadgen.MaxBodySize)
		}
		if ids[ev.ID] {
			t.Errorf("event id %s generated twice", ev.ID)
		}
		ids[ev.ID] = true
		total += len(ev.Body)
		if !ev.IsInquiry() {
			others++
		}
	}
	if avg := total / n; avg < 3600 || avg > 4600 {
		t.Errorf("average body %d bytes, want about 4 KB", avg)
	}
	if share := float64(others) / n; share < 0.15 || share > 0.4 {
		t.Errorf("%.0f%% of events are about other objects, want 15%% to 40%%", share*100)
	}
	// created-at strictly increases within each inquiry, and the stream
	// as a whole is in created-at order.
	last := map[*loadgen.Inquiry]*loadgen.Event{}
	for i, ev := range events {
		if prev := last[ev.Inquiry]; prev != nil && !ev.CreatedAt.After(prev.CreatedAt) {
			t.Fatalf("%s at %s follows %s at %s in inquiry %s", ev.Name, ev.CreatedAt, prev.Name, prev.CreatedAt, ev.Inquiry.ID)
		}
		last[ev.Inquiry] = ev
		if i > 0 && ev.CreatedAt.Before(events[i-1].CreatedAt) {
			t.Fatalf("event %d at %s comes before event %d at %s", i, ev.CreatedAt, i-1, events[i-1].CreatedAt)
		}
	}
	for _, gi := range inqs {
		if gi.inq.Events != len(gi.events) || gi.inq.Others != gi.others {
			t.Errorf("inquiry %s counts %d+%d events, emitted %d+%d", gi.inq.ID, gi.inq.Events, gi.inq.Others, len(gi.events), gi.others)
		}
	}
}

// TestCoverage: a stream holds every kind of history the generator
// promises.
func TestCoverage(t *testing.T) {
	events, inqs := streamOf8k()
	names := map[string]int{}
	for _, ev := range events {
		names[ev.Name]++
	}
	for _, want := range []string{
		engine.EventCreated, engine.EventStarted, engine.EventTransitioned, engine.EventCompleted,
		engine.EventFailed, engine.EventExpired, engine.EventMarkedForReview, engine.EventApproved,
		engine.EventDeclined, engine.EventUpdatedTags, engine.EventRedacted,
		engine.EventReusablePersonaCreate, engine.EventReusablePersonaUsed,
		"account.created", "verification.passed", "verification.failed",
		"report/watchlist.ready", "report/watchlist.matched",
	} {
		if names[want] == 0 {
			t.Errorf("no %s in 8,000 events", want)
		}
	}
	var resumed, redecided, redacted int
	for _, gi := range inqs {
		for i := 1; i < len(gi.events); i++ {
			prev, ev := gi.events[i-1].Inquiry.Status, gi.events[i].Inquiry.Status
			switch {
			case prev == engine.StatusExpired && ev == engine.StatusPending:
				resumed++
			case prev == engine.StatusApproved && ev == engine.StatusDeclined,
				prev == engine.StatusDeclined && ev == engine.StatusApproved:
				redecided++
			}
		}
		if gi.inq.Final.Redacted {
			redacted++
		}
	}
	if resumed == 0 || redecided == 0 || redacted == 0 {
		t.Errorf("%d resumes, %d re-decisions, %d redacted inquiries: want some of each", resumed, redecided, redacted)
	}
}

// state is the part of a projection the ground truth predicts.
func state(inq *engine.Inquiry) loadgen.State {
	return loadgen.State{Status: inq.Status, Decision: inq.Decision, Redacted: inq.Redacted}
}

// TestGroundTruthAgreesWithFold checks the generator's model against the
// engine: the fold of each inquiry's emitted events gives the predicted
// projection, and folding them one by one gives the predicted changes.
func TestGroundTruthAgreesWithFold(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range uint64(seeds) {
		for _, autoDecide := range []bool{false, true} {
			_, inqs := generate(t, loadgen.Config{Seed: seed, Events: 1000, Open: 20, AutoDecide: autoDecide})
			policy := engine.Policy{AutoDecide: autoDecide}
			for _, gi := range inqs {
				if len(gi.events) == 0 {
					continue
				}
				got, steps := engine.Fold(gi.inq.ID, gi.events, policy)
				if state(got) != gi.inq.Final {
					t.Fatalf("seed %d: inquiry %s folds to %+v, ground truth %+v", seed, gi.inq.ID, state(got), gi.inq.Final)
				}
				if !slices.Equal(got.Tags, gi.inq.Tags) {
					t.Fatalf("seed %d: inquiry %s folds to tags %q, ground truth %q", seed, gi.inq.ID, got.Tags, gi.inq.Tags)
				}
				for _, s := range steps {
					if s.Outcome != engine.OutcomeApplied && s.Outcome != engine.OutcomeUnchanged {
						t.Fatalf("seed %d: inquiry %s: event %s is %s: the plan took a transition the lifecycle does not permit", seed, gi.inq.ID, s.EventID, s.Outcome)
					}
				}
				for _, a := range got.Anomalies {
					if a.Kind != engine.AnomalyRedecision {
						t.Fatalf("seed %d: inquiry %s: anomaly %+v", seed, gi.inq.ID, a)
					}
				}
				var changes []loadgen.State
				var prev loadgen.State
				for i := range gi.events {
					inq, _ := engine.Fold(gi.inq.ID, gi.events[:i+1], policy)
					if s := state(inq); s != prev {
						changes = append(changes, s)
						prev = s
					}
				}
				if !slices.Equal(changes, gi.inq.Changes) {
					t.Fatalf("seed %d: inquiry %s: in-order changes %+v, ground truth %+v", seed, gi.inq.ID, changes, gi.inq.Changes)
				}
			}
		}
	}
}

// TestOutOfOrderNeverAddsChanges backs the bench's change-feed check:
// whatever order an inquiry's events arrive in, the projections after each
// arrival change at most as often as the in-order history does, and end at
// the ground truth.
func TestOutOfOrderNeverAddsChanges(t *testing.T) {
	for _, p := range []engine.Policy{{}, {AutoDecide: true}} {
		_, inqs := generate(t, loadgen.Config{Seed: 11, Events: 3000, Open: 20, AutoDecide: p.AutoDecide})
		r := rand.New(rand.NewPCG(1, 2))
		for _, gi := range inqs {
			for range 5 {
				arrival := slices.Clone(gi.events)
				r.Shuffle(len(arrival), func(i, j int) { arrival[i], arrival[j] = arrival[j], arrival[i] })
				var prev loadgen.State
				changes := 0
				for i := range arrival {
					inq, _ := engine.Fold(gi.inq.ID, arrival[:i+1], p)
					if s := state(inq); s != prev {
						changes++
						prev = s
					}
				}
				if changes > len(gi.inq.Changes) || (len(arrival) > 0 && prev != gi.inq.Final) {
					t.Fatalf("%+v: inquiry %s: %d changes out of order (ending %+v), %d in order (ending %+v)",
						p, gi.inq.ID, changes, prev, len(gi.inq.Changes), gi.inq.Final)
				}
			}
		}
	}
}

// TestTruncatedStream: with Events set, the stream stops exactly there and
// inquiries cut short have the ground truth of what was emitted.
func TestTruncatedStream(t *testing.T) {
	events, inqs := generate(t, loadgen.Config{Seed: 5, Events: 997, Open: 30})
	if len(events) != 997 {
		t.Fatalf("%d events, want 997", len(events))
	}
	cut := 0
	for _, gi := range inqs {
		if gi.inq.Done() {
			continue
		}
		cut++
		if len(gi.events) == 0 {
			continue
		}
		got, _ := engine.Fold(gi.inq.ID, gi.events, engine.Policy{})
		if state(got) != gi.inq.Final {
			t.Errorf("cut inquiry %s folds to %+v, ground truth %+v", gi.inq.ID, state(got), gi.inq.Final)
		}
	}
	if cut == 0 || cut > 30 {
		t.Errorf("%d inquiries cut short, want 1 to 30 (the open ones)", cut)
	}
}
