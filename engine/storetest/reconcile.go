package storetest

import (
	"errors"
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

// testDrifts: SetDrift keeps one drift per inquiry, replacing the one
// before; ClearDrift forgets it (and does nothing without one); Drifts
// reads those of the ids given that have one, and a failed update leaves
// them as they were.
func testDrifts(t *testing.T, s engine.Store) {
	at := t0.Add(time.Hour) // whole milliseconds: a store may keep no finer
	a := engine.Drift{InquiryID: "inq_da", Status: engine.StatusPending, PersonaStatus: engine.StatusApproved, CheckedAt: at}
	b := engine.Drift{InquiryID: "inq_db", Status: engine.StatusCreated, PersonaStatus: engine.StatusExpired, CheckedAt: at.Add(time.Second)}
	c := engine.Drift{InquiryID: "inq_dc", Status: engine.StatusCompleted, PersonaStatus: engine.StatusDeclined, CheckedAt: at}
	drifts := func(t *testing.T, ids ...string) map[string]engine.Drift {
		t.Helper()
		got, err := s.Drifts(ctx, ids)
		if err != nil {
			t.Fatalf("Drifts(%v): %v", ids, err)
		}
		return got
	}
	check := func(t *testing.T, got, want map[string]engine.Drift) {
		t.Helper()
		if !maps.EqualFunc(got, want, func(x, y engine.Drift) bool {
			return x.InquiryID == y.InquiryID && x.Status == y.Status && x.PersonaStatus == y.PersonaStatus && x.CheckedAt.Equal(y.CheckedAt)
		}) {
			t.Errorf("Drifts = %v, want %v", got, want)
		}
	}
	all := []string{"inq_da", "inq_db", "inq_dc", "inq_unknown"}

	t.Run("none", func(t *testing.T) {
		check(t, drifts(t, all...), map[string]engine.Drift{})
		check(t, drifts(t), map[string]engine.Drift{})
	})
	t.Run("set", func(t *testing.T) {
		update(t, s, func(tx engine.Tx) error {
			for _, d := range []engine.Drift{a, b, c} {
				if err := tx.SetDrift(&d); err != nil {
					return err
				}
			}
			return nil
		})
		check(t, drifts(t, all...), map[string]engine.Drift{"inq_da": a, "inq_db": b, "inq_dc": c})
		check(t, drifts(t, "inq_db", "inq_unknown"), map[string]engine.Drift{"inq_db": b})
	})
	t.Run("replace", func(t *testing.T) {
		a = engine.Drift{InquiryID: "inq_da", Status: engine.StatusCompleted, PersonaStatus: engine.StatusDeclined, CheckedAt: at.Add(time.Minute)}
		update(t, s, func(tx engine.Tx) error { return tx.SetDrift(&a) })
		check(t, drifts(t, all...), map[string]engine.Drift{"inq_da": a, "inq_db": b, "inq_dc": c})
	})
	t.Run("clear", func(t *testing.T) {
		update(t, s, func(tx engine.Tx) error {
			if err := tx.ClearDrift("inq_db"); err != nil {
				return err
			}
			return tx.ClearDrift("inq_unknown")
		})
		check(t, drifts(t, all...), map[string]engine.Drift{"inq_da": a, "inq_dc": c})
	})
	t.Run("failed update", func(t *testing.T) {
		boom := errors.New("boom")
		err := s.Update(ctx, func(tx engine.Tx) error {
			if err := tx.SetDrift(&engine.Drift{InquiryID: "inq_da", Status: engine.StatusFailed, PersonaStatus: engine.StatusApproved, CheckedAt: at}); err != nil {
				return err
			}
			if err := tx.SetDrift(&b); err != nil {
				return err
			}
			if err := tx.ClearDrift("inq_dc"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want the fn's error", err)
		}
		check(t, drifts(t, all...), map[string]engine.Drift{"inq_da": a, "inq_dc": c})
	})
}
