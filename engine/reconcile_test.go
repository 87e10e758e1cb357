package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// TestIngestSource: a delivery's source is stored with its event ("" as
// webhook), a redelivery by the other path leaves it, and an unknown
// source stores nothing at all, not even a dead letter.
func TestIngestSource(t *testing.T) {
	st := engine.NewMemoryStore()
	eng := engine.New(st, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for _, d := range []engine.Delivery{
		{Body: eventSpec{ID: "evt_w", Name: engine.EventCreated, Status: "created", At: t0}.body(), ReceivedAt: t0},
		{Body: eventSpec{ID: "evt_a", Name: engine.EventStarted, Status: "pending", At: t0.Add(time.Minute)}.body(), ReceivedAt: t0, Source: engine.SourceAPI},
		{Body: eventSpec{ID: "evt_w2", Name: engine.EventCompleted, Status: "completed", At: t0.Add(2 * time.Minute)}.body(), ReceivedAt: t0, Source: engine.SourceWebhook},
		// The webhook's delivery of evt_a, late: a duplicate.
		{Body: eventSpec{ID: "evt_a", Name: engine.EventStarted, Status: "pending", At: t0.Add(time.Minute)}.body(), ReceivedAt: t0.Add(time.Hour)},
	} {
		if _, err := eng.Ingest(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := eng.History(ctx, "inq_test")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"evt_w": engine.SourceWebhook, "evt_a": engine.SourceAPI, "evt_w2": engine.SourceWebhook}
	if len(hist) != len(want) {
		t.Fatalf("history of %d events, want %d", len(hist), len(want))
	}
	for _, e := range hist {
		if got := e.Source; got != want[e.EventID] {
			t.Errorf("%s: source %q, want %q", e.EventID, got, want[e.EventID])
		}
	}

	for _, tt := range []struct {
		name string
		body []byte
	}{
		{"event", eventSpec{ID: "evt_x", Name: engine.EventApproved, Status: "approved", At: t0.Add(time.Hour)}.body()},
		{"malformed", []byte(`{"data":{"type":"event","id":"evt_y"}}`)},
	} {
		t.Run("unknown source, "+tt.name, func(t *testing.T) {
			_, err := eng.Ingest(ctx, engine.Delivery{Body: tt.body, ReceivedAt: t0, Source: "email"})
			if !errors.Is(err, engine.ErrInvalid) || errors.Is(err, engine.ErrUnavailable) {
				t.Errorf("Ingest = %v, want ErrInvalid", err)
			}
			if got := len(st.AllEvents()); got != 3 {
				t.Errorf("%d events stored, want 3", got)
			}
			if got := len(st.DeadLetters()); got != 0 {
				t.Errorf("%d dead letters kept, want none", got)
			}
		})
	}
}
