package storetest

import (
	"maps"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// testEventSource: an event's source is stored and read back by Events,
// RelatedEvents, the Tx's InquiryEvents and so the engine's History; ""
// is stored as SourceWebhook, a redelivery leaves it as it is, and a
// source that is neither is refused.
func testEventSource(t *testing.T, s engine.Store) {
	webhook, empty, api := record("evt_sw", "inq_src", t0), record("evt_se", "inq_src", t0.Add(time.Minute)), record("evt_sa", "inq_src", t0.Add(2*time.Minute))
	webhook.Source, api.Source = engine.SourceWebhook, engine.SourceAPI
	rel := related("evt_sr", "inq_src", t0.Add(3*time.Minute))
	rel.Source = engine.SourceAPI
	update(t, s, func(tx engine.Tx) error {
		for _, r := range []*engine.Record{webhook, empty, api, rel} {
			if err := tx.AppendEvent(r); err != nil {
				return err
			}
		}
		return tx.SaveInquiry(&engine.Inquiry{ID: "inq_src", Status: engine.StatusPending, EventCount: 3, UpdatedAt: t0.Add(2 * time.Minute)})
	})
	// Another delivery of the one fetched from the API, now by webhook.
	update(t, s, func(tx engine.Tx) error {
		_, err := tx.RecordDelivery(api.EventID, 2, api.SHA256)
		return err
	})
	want := map[string]string{"evt_sw": engine.SourceWebhook, "evt_se": engine.SourceWebhook, "evt_sa": engine.SourceAPI}
	sources := func(recs []engine.Record) map[string]string {
		got := map[string]string{}
		for _, r := range recs {
			got[r.EventID] = r.Source
		}
		return got
	}
	recs, err := s.Events(ctx, "inq_src")
	if err != nil {
		t.Fatal(err)
	}
	if got := sources(recs); !maps.Equal(got, want) {
		t.Errorf("Events' sources = %v, want %v", got, want)
	}
	update(t, s, func(tx engine.Tx) error {
		recs, err := tx.InquiryEvents("inq_src")
		if got := sources(recs); err == nil && !maps.Equal(got, want) {
			t.Errorf("InquiryEvents' sources = %v, want %v", got, want)
		}
		return err
	})
	recs, err = s.RelatedEvents(ctx, "inq_src")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sources(recs), map[string]string{"evt_sr": engine.SourceAPI}; !maps.Equal(got, want) {
		t.Errorf("RelatedEvents' sources = %v, want %v", got, want)
	}
	hist, err := engine.New(s, engine.Policy{}).History(ctx, "inq_src")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range hist {
		got[e.EventID] = e.Source
	}
	if !maps.Equal(got, want) {
		t.Errorf("History's sources = %v, want %v", got, want)
	}

	bad := record("evt_sx", "inq_src", t0.Add(4*time.Minute))
	bad.Source = "email"
	if err := s.Update(ctx, func(tx engine.Tx) error { return tx.AppendEvent(bad) }); err == nil {
		t.Errorf("AppendEvent of source %q succeeded, want an error", bad.Source)
	}
	if recs, _ := s.Events(ctx, "inq_src"); len(recs) != 3 {
		t.Errorf("Events after the refused source: %d records, want 3", len(recs))
	}
}
