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

// TestInquiryShowsDrift: a drift kept by a reconciliation check is an
// anomaly of the inquiry and of its listing, with an empty event_id, as
// the document describes it.
func TestInquiryShowsDrift(t *testing.T) {
	f := newFixture(t, "", nil)
	f.post(t, event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0), nil)
	if _, _, err := f.eng.CheckStatus(context.Background(), "inq_1", engine.StatusApproved, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, one := f.get(t, "/v1/inquiries/inq_1")
	_, list := f.get(t, "/v1/inquiries")
	page, _ := list["inquiries"].([]any)
	if len(page) != 1 {
		t.Fatalf("listing %v, want one inquiry", list)
	}
	for name, inq := range map[string]map[string]any{"inquiry": one, "listing": page[0].(map[string]any)} {
		anomalies, _ := inq["anomalies"].([]any)
		if len(anomalies) != 1 {
			t.Errorf("%s: anomalies %v, want one", name, inq["anomalies"])
			continue
		}
		a := anomalies[0].(map[string]any)
		if a["kind"] != "status_drift" || a["event_id"] != "" || a["from"] != "pending" || a["to"] != "approved" {
			t.Errorf("%s: anomaly %v, want a status_drift from pending to approved", name, a)
		}
	}
}
