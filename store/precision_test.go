package store_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// TestSubMillisecondOrder ingests two events of one inquiry 0.4 ms apart
// in the wrong arrival order (the later one first), with nothing, a
// restart or a cache eviction between them. Before version 5 a projection
// kept its times to the millisecond, so after a restart or an eviction
// the earlier event looked later than the stored projection and was
// applied on top of it, where without either it was re-folded in order.
// Every path must give the full re-fold of the log, and so must Rebuild
// and Verify afterwards.
func TestSubMillisecondOrder(t *testing.T) {
	const id = "inq_subms"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	late := bodyAt(t, storetest.Body("evt_late", engine.EventStarted, id, engine.StatusPending, t0), "2024-03-15T18:30:00.0006Z")
	early := bodyAt(t, storetest.Body("evt_early", engine.EventCreated, id, engine.StatusCreated, t0), "2024-03-15T18:30:00.0002Z")
	events := make([]*engine.Event, 2)
	for i, b := range [][]byte{late, early} {
		ev, err := engine.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		events[i] = ev
	}
	want, _ := engine.Fold(id, events, engine.Policy{})
	if want.Status != engine.StatusPending || want.LastEventID != "evt_late" || len(want.Anomalies) != 0 {
		t.Fatalf("the fold itself: %s", jsonOf(t, want))
	}
	wantJSON := jsonOf(t, want)

	tests := []struct {
		name    string
		between func(t *testing.T, db *store.DB, path string) *store.DB
	}{
		{"live", func(t *testing.T, db *store.DB, _ string) *store.DB { return db }},
		{"restart", func(t *testing.T, db *store.DB, path string) *store.DB {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			return openPath(t, path, store.Options{})
		}},
		{"cache eviction", func(t *testing.T, db *store.DB, _ string) *store.DB {
			if err := store.EvictProjections(db); err != nil {
				t.Fatal(err)
			}
			return db
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			db := openPath(t, path, store.Options{})
			ingest(t, engine.New(db, engine.Policy{}), late)
			db = tt.between(t, db, path)
			ingest(t, engine.New(db, engine.Policy{}), early)
			if got := jsonOf(t, mustInquiry(t, db, id)); got != wantJSON {
				t.Errorf("projection after ingest:\ngot  %s\nwant %s", got, wantJSON)
			}
			if got := jsonOf(t, foldOfLog(t, db, id, engine.Policy{})); got != wantJSON {
				t.Errorf("fold of the stored log:\ngot  %s\nwant %s", got, wantJSON)
			}
			mustVerify(t, db, engine.Policy{})
			rep, err := db.Rebuild(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Changed) != 0 {
				t.Errorf("Rebuild replaced %v: the stored projection was not the fold", rep.Changed)
			}
			if got := jsonOf(t, mustInquiry(t, db, id)); got != wantJSON {
				t.Errorf("projection after Rebuild:\ngot  %s\nwant %s", got, wantJSON)
			}
		})
	}
}

// bodyAt returns a body of storetest.Body made at 18:30:00.000 that says
// it was created at createdAt instead, written as Persona might.
func bodyAt(tb testing.TB, body []byte, createdAt string) []byte {
	tb.Helper()
	const at = `"created-at":"2024-03-15T18:30:00.000Z"`
	if bytes.Count(body, []byte(at)) != 1 {
		tb.Fatalf("body holds %s %d times, want once", at, bytes.Count(body, []byte(at)))
	}
	return bytes.Replace(body, []byte(at), []byte(`"created-at":"`+createdAt+`"`), 1)
}
