package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// TestHistoryShowsSource: each event of an inquiry's history says how it
// first arrived, a webhook's redelivery of an event fetched from the API
// included; the responses pass the document's schema.
func TestHistoryShowsSource(t *testing.T) {
	f := newFixture(t, "", nil)
	f.post(t, event("evt_1", engine.EventCreated, "inq_1", engine.StatusCreated, t0), nil)
	fetched := event("evt_2", engine.EventStarted, "inq_1", engine.StatusPending, t0.Add(time.Minute))
	if _, err := f.eng.Ingest(context.Background(), engine.Delivery{Body: fetched, ReceivedAt: t0.Add(time.Hour), Source: engine.SourceAPI}); err != nil {
		t.Fatal(err)
	}
	f.post(t, fetched, nil)
	code, v := f.get(t, "/v1/inquiries/inq_1/events")
	events, _ := v["events"].([]any)
	if code != 200 || len(events) != 2 {
		t.Fatalf("%d %v", code, v)
	}
	for i, want := range []string{"webhook", "api"} {
		if got := events[i].(map[string]any)["source"]; got != want {
			t.Errorf("event %d: source %v, want %q", i, got, want)
		}
	}
}
