package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// compactFixture returns a fixture as Persona sends it: compact JSON.
func compactFixture(b *testing.B, name string) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, fixture(b, name)); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkParse: the 4 KB inquiry.reusable-persona-created body.
func BenchmarkParse(b *testing.B) {
	body := compactFixture(b, "inquiry.reusable-persona-created.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseApply: parse the 4 KB body and fold it onto a projection,
// the work of one in-order delivery outside the store.
func BenchmarkParseApply(b *testing.B) {
	body := compactFixture(b, "inquiry.reusable-persona-created.json")
	base := &engine.Inquiry{ID: "inq_kT4xVnR2bPmYwL9sTgD3cExZ", Status: engine.StatusPending, EventCount: 3,
		UpdatedAt: time.Date(2024, 3, 15, 18, 31, 0, 0, time.UTC), Tags: []string{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := engine.Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		inq := base.Clone()
		if !inq.After(ev) {
			b.Fatal("fixture is not after the base projection")
		}
		inq.Apply(ev, engine.Policy{})
	}
}

// tenEventHistory is a 10-event history of 4 KB bodies.
func tenEventHistory(b *testing.B) [][]byte {
	files := []string{"inquiry.created.json", "inquiry.started.json", "inquiry.transitioned.json", "inquiry.updated-tags.json",
		"inquiry.completed.json", "inquiry.marked-for-review.json", "inquiry.approved.json",
		"inquiry.reusable-persona-created.json", "inquiry.reusable-persona-used.json", "inquiry.redacted.json"}
	bodies := make([][]byte, len(files))
	for i, f := range files {
		bodies[i] = compactFixture(b, f)
	}
	return bodies
}

// BenchmarkFold10: fold a parsed 10-event history from scratch (a late
// event's re-fold).
func BenchmarkFold10(b *testing.B) {
	var events []*engine.Event
	for _, body := range tenEventHistory(b) {
		ev, err := engine.Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, ev)
	}
	b.ReportAllocs()
	for b.Loop() {
		engine.Fold(events[0].ObjectID, events, engine.Policy{})
	}
}

// BenchmarkParseFold10: parse and fold the 10-event history; reports the
// cost per event.
func BenchmarkParseFold10(b *testing.B) {
	bodies := tenEventHistory(b)
	events := make([]*engine.Event, len(bodies))
	b.ReportAllocs()
	for b.Loop() {
		for i, body := range bodies {
			ev, err := engine.Parse(body)
			if err != nil {
				b.Fatal(err)
			}
			events[i] = ev
		}
		engine.Fold(events[0].ObjectID, events, engine.Policy{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(bodies)), "ns/event")
}

// BenchmarkIngestMemory: the whole engine path on the in-memory store,
// in-order deliveries of distinct inquiries.
func BenchmarkIngestMemory(b *testing.B) {
	tmpl := compactFixture(b, "inquiry.reusable-persona-created.json")
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := bytes.Replace(tmpl, []byte("evt_"), fmt.Appendf(nil, "evt_%d_", i), 1)
		body = bytes.ReplaceAll(body, []byte("inq_kT4x"), fmt.Appendf(nil, "inq_%d_", i))
		if _, err := eng.Ingest(ctx, engine.Delivery{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}
