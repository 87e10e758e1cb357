package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// countingStore counts the Updates and Drifts calls made to a MemoryStore.
type countingStore struct {
	*engine.MemoryStore
	updates, drifts atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	s.updates.Add(1)
	return s.MemoryStore.Update(ctx, fn)
}

func (s *countingStore) Drifts(ctx context.Context, ids []string) (map[string]engine.Drift, error) {
	s.drifts.Add(1)
	return s.MemoryStore.Drifts(ctx, ids)
}

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

// TestCheckStatus runs reconciliation checks one after the other on one
// inquiry, pending in personad, and wants each to keep, replace or clear
// the drift as Persona's answer says, writing only when that changes
// anything.
func TestCheckStatus(t *testing.T) {
	st := &countingStore{MemoryStore: engine.NewMemoryStore()}
	eng := engine.New(st, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	deliver(t, eng, eventSpec{ID: "evt_1", Name: engine.EventCreated, Status: "created", At: t0, Inquiry: "inq_c"}.body())
	deliver(t, eng, eventSpec{ID: "evt_2", Name: engine.EventStarted, Status: "pending", At: t0.Add(time.Minute), Inquiry: "inq_c"}.body())
	checked := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	drift := func(status, persona engine.Status, h int) *engine.Drift {
		return &engine.Drift{InquiryID: "inq_c", Status: status, PersonaStatus: persona, CheckedAt: checked(h)}
	}
	tests := []struct {
		name    string
		before  []byte // an event delivered first, if any
		persona engine.Status
		want    *engine.Drift // returned and then kept
		wrote   bool
		updates int64
	}{
		{"agree, no drift", nil, engine.StatusPending, nil, false, 0},
		{"differ", nil, engine.StatusApproved, drift(engine.StatusPending, engine.StatusApproved, 2), true, 1},
		{"differ again the same", nil, engine.StatusApproved, drift(engine.StatusPending, engine.StatusApproved, 2), false, 0},
		{"differ with a new status of Persona's", nil, engine.StatusDeclined, drift(engine.StatusPending, engine.StatusDeclined, 4), true, 1},
		{"differ after an event moved the projection",
			eventSpec{ID: "evt_3", Name: engine.EventCompleted, Status: "completed", At: t0.Add(2 * time.Minute), Inquiry: "inq_c"}.body(),
			engine.StatusDeclined, drift(engine.StatusCompleted, engine.StatusDeclined, 5), true, 1},
		{"agree, drift kept", nil, engine.StatusCompleted, nil, true, 1},
		{"agree again", nil, engine.StatusCompleted, nil, false, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				deliver(t, eng, tt.before)
			}
			updates := st.updates.Load()
			got, wrote, err := eng.CheckStatus(ctx, "inq_c", tt.persona, checked(i+1))
			if err != nil {
				t.Fatal(err)
			}
			if !sameDrift(got, tt.want) || wrote != tt.wrote {
				t.Errorf("CheckStatus(%s) = %+v, %t; want %+v, %t", tt.persona, got, wrote, tt.want, tt.wrote)
			}
			if n := st.updates.Load() - updates; n != tt.updates {
				t.Errorf("%d Updates, want %d", n, tt.updates)
			}
			kept, err := st.Drifts(ctx, []string{"inq_c"})
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := kept["inq_c"]; ok != (tt.want != nil) || ok && !sameDrift(&d, tt.want) {
				t.Errorf("drift kept: %+v (%t), want %+v", d, ok, tt.want)
			}
		})
	}
	if inq, err := st.GetInquiry(ctx, "inq_c"); err != nil || len(inq.Anomalies) != 0 || inq.Status != engine.StatusCompleted {
		t.Errorf("stored projection %+v (%v), want completed with no anomaly: a check changes no projection", inq, err)
	}

	t.Run("errors", func(t *testing.T) {
		updates := st.updates.Load()
		if _, _, err := eng.CheckStatus(ctx, "inq_none", engine.StatusApproved, t0); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("unknown inquiry: %v, want ErrNotFound", err)
		}
		if _, _, err := eng.CheckStatus(ctx, "inq_c", "", t0); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("empty status: %v, want ErrInvalid", err)
		}
		if n := st.updates.Load() - updates; n != 0 {
			t.Errorf("%d Updates, want none", n)
		}
		st.FailUpdates(errors.New("disk full"))
		defer st.FailUpdates(nil)
		if _, _, err := eng.CheckStatus(ctx, "inq_c", engine.StatusApproved, t0); !errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("failing store: %v, want ErrUnavailable", err)
		}
	})
}

func sameDrift(a, b *engine.Drift) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.InquiryID == b.InquiryID && a.Status == b.Status && a.PersonaStatus == b.PersonaStatus && a.CheckedAt.Equal(b.CheckedAt)
}

// TestDriftShown: Inquiry and Inquiries add a status_drift anomaly to an
// inquiry whose drift is of its current status, reading the drifts of a
// page at once, and leave the stored projection as it is; once an event
// moves the inquiry on, the stale drift is not shown.
func TestDriftShown(t *testing.T) {
	st := &countingStore{MemoryStore: engine.NewMemoryStore()}
	eng := engine.New(st, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for i, id := range []string{"inq_a", "inq_b", "inq_c"} {
		deliver(t, eng, eventSpec{ID: "evt_" + id, Name: engine.EventStarted, Status: "pending", At: t0.Add(time.Duration(i) * time.Minute), Inquiry: id}.body())
	}
	for _, id := range []string{"inq_a", "inq_c"} {
		if _, _, err := eng.CheckStatus(ctx, id, engine.StatusApproved, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	want := engine.Anomaly{Kind: engine.AnomalyStatusDrift, From: engine.StatusPending, To: engine.StatusApproved}
	shown := func(t *testing.T, want map[string]bool) {
		t.Helper()
		drifts := st.drifts.Load()
		page, _, err := eng.Inquiries(ctx, engine.Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 3 {
			t.Fatalf("Inquiries listed %d, want 3", len(page))
		}
		if n := st.drifts.Load() - drifts; n != 1 {
			t.Errorf("Inquiries read drifts %d times, want once", n)
		}
		for _, inq := range page {
			one, err := eng.Inquiry(ctx, inq.ID)
			if err != nil {
				t.Fatal(err)
			}
			wantN := 0
			if want[inq.ID] {
				wantN = 1
			}
			for _, got := range []*engine.Inquiry{inq, one} {
				if n := driftAnomalies(got); n != wantN {
					t.Errorf("%s: anomalies %+v, want %d status_drift", inq.ID, got.Anomalies, wantN)
				}
			}
			if stored, _ := st.GetInquiry(ctx, inq.ID); driftAnomalies(stored) != 0 {
				t.Errorf("%s: the stored projection holds the drift", inq.ID)
			}
		}
	}
	t.Run("shown", func(t *testing.T) {
		shown(t, map[string]bool{"inq_a": true, "inq_c": true})
		inq, err := eng.Inquiry(ctx, "inq_a")
		if err != nil {
			t.Fatal(err)
		}
		if len(inq.Anomalies) != 1 || inq.Anomalies[0] != want {
			t.Errorf("anomalies %+v, want only %+v", inq.Anomalies, want)
		}
	})
	t.Run("hidden once an event moved the inquiry", func(t *testing.T) {
		deliver(t, eng, eventSpec{ID: "evt_a2", Name: engine.EventCompleted, Status: "completed", At: t0.Add(time.Hour), Inquiry: "inq_a"}.body())
		shown(t, map[string]bool{"inq_c": true})
	})
}

// driftAnomalies counts inq's status_drift anomalies.
func driftAnomalies(inq *engine.Inquiry) int {
	n := 0
	for _, a := range inq.Anomalies {
		if a.Kind == engine.AnomalyStatusDrift {
			n++
		}
	}
	return n
}

// sharingStore hands out the same projection on every GetInquiry, as a
// store with a cache of its own may.
type sharingStore struct {
	*engine.MemoryStore
	shared map[string]*engine.Inquiry
}

func (s *sharingStore) GetInquiry(ctx context.Context, id string) (*engine.Inquiry, error) {
	if inq, ok := s.shared[id]; ok {
		return inq, nil
	}
	inq, err := s.MemoryStore.GetInquiry(ctx, id)
	if err == nil {
		s.shared[id] = inq
	}
	return inq, err
}

// TestDriftShownOnACopy: the anomaly is added to a copy, so that a store
// that shares its projections neither keeps it nor shows it twice.
func TestDriftShownOnACopy(t *testing.T) {
	st := &sharingStore{MemoryStore: engine.NewMemoryStore(), shared: map[string]*engine.Inquiry{}}
	eng := engine.New(st, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	deliver(t, eng, eventSpec{ID: "evt_1", Name: engine.EventStarted, Status: "pending", At: t0, Inquiry: "inq_s"}.body())
	if _, _, err := eng.CheckStatus(ctx, "inq_s", engine.StatusApproved, t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		inq, err := eng.Inquiry(ctx, "inq_s")
		if err != nil {
			t.Fatal(err)
		}
		if n := driftAnomalies(inq); n != 1 {
			t.Errorf("read %d: %d status_drift anomalies, want 1", i+1, n)
		}
	}
	if n := driftAnomalies(st.shared["inq_s"]); n != 0 {
		t.Errorf("the store's projection has %d status_drift anomalies, want none", n)
	}
}
