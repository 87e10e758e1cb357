package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// holdSnapshot begins a read transaction on another connection, as a
// backup or Litestream does, so that the WAL cannot be truncated until
// the returned transaction ends.
func holdSnapshot(tb testing.TB, path string) *sql.Tx {
	tb.Helper()
	snapshot, err := rawDB(tb, path, "mode=ro").Begin()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { snapshot.Rollback() })
	var n int
	if err := snapshot.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return snapshot
}

// waitFor polls cond until it holds or within has passed.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForgetOverdue holds a reader's snapshot while a redaction, and then
// Retain, rewrite bodies: ForgetOverdue must rise above 0 past
// ForgetWithin, OnForgetOverdue must fire once per episode however long it
// lasts, and both must settle once the reader leaves and the writer's
// checkpoint completes.
func TestForgetOverdue(t *testing.T) {
	for _, forget := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprintf("forget within %v", forget), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			var fired atomic.Int32
			db := openPath(t, path, store.Options{ForgetWithin: forget, BusyTimeout: 100 * time.Millisecond,
				OnForgetOverdue: func() { fired.Add(1) }})
			eng := engine.New(db, engine.Policy{})
			g := newGenerator(t)
			for n := range 3 { // first in the log, for Retain
				ingestAt(t, eng, g.body(n, 0), time.Now().Add(-time.Hour))
			}
			bodies := history(t) // ends with inquiry.redacted
			for _, b := range bodies[:len(bodies)-1] {
				ingest(t, eng, b)
			}
			if got := db.ForgetOverdue(); got != 0 {
				t.Fatalf("before any scrub: ForgetOverdue() = %v, want 0", got)
			}

			episodes := []struct {
				name  string
				scrub func()
			}{
				{"redaction", func() { ingest(t, eng, bodies[len(bodies)-1]) }},
				{"retention", func() {
					if rep, err := db.Retain(ctx, time.Now().Add(-time.Minute)); err != nil || rep.EventsScrubbed != 3 {
						t.Fatalf("Retain: %+v, %v; want 3 events scrubbed", rep, err)
					}
				}},
			}
			for i, ep := range episodes {
				want := int32(i + 1)
				snapshot := holdSnapshot(t, path)
				ep.scrub()
				if forget == 0 {
					// The checkpoint before acknowledging failed: due at once.
					if got := fired.Load(); got != want || db.ForgetOverdue() <= 0 {
						t.Fatalf("%s acknowledged: fired %d times, ForgetOverdue() = %v; want %d and > 0", ep.name, got, db.ForgetOverdue(), want)
					}
				}
				waitFor(t, 5*time.Second, ep.name+": overdue reported", func() bool {
					return db.ForgetOverdue() > 0 && fired.Load() == want
				})
				// Several retries fail while the reader stays.
				first := db.ForgetOverdue()
				waitFor(t, 5*time.Second, ep.name+": overdue grows", func() bool {
					return db.ForgetOverdue() > first+3*100*time.Millisecond
				})
				if got := fired.Load(); got != want {
					t.Errorf("%s: OnForgetOverdue fired %d times, want %d: once per episode", ep.name, got, want)
				}
				if err := snapshot.Rollback(); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, ep.name+": overdue cleared once the reader left", func() bool {
					return db.ForgetOverdue() == 0
				})
				if got := fired.Load(); got != want {
					t.Errorf("%s: OnForgetOverdue fired %d times after the checkpoint, want %d", ep.name, got, want)
				}
			}
		})
	}
}

// TestForgetNotOverdueWithoutScrub: a reader that holds a snapshot while
// events are ingested, none of which rewrites a body, is no overdue
// forgetting.
func TestForgetNotOverdueWithoutScrub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	var fired atomic.Int32
	db := openPath(t, path, store.Options{ForgetWithin: 20 * time.Millisecond, BusyTimeout: 100 * time.Millisecond,
		OnForgetOverdue: func() { fired.Add(1) }})
	eng := engine.New(db, engine.Policy{})
	bodies := history(t)
	ingest(t, eng, bodies[0])
	holdSnapshot(t, path)
	for _, b := range bodies[1 : len(bodies)-1] {
		ingest(t, eng, b)
	}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := db.ForgetOverdue(); got != 0 {
			t.Fatalf("ForgetOverdue() = %v with nothing scrubbed, want 0", got)
		}
	}
	if got := fired.Load(); got != 0 {
		t.Errorf("OnForgetOverdue fired %d times with nothing scrubbed", got)
	}
}

// TestCloseReportsForgetPending: Close says so when a reader kept its
// checkpoint from taking scrubbed-away bodies out of the WAL, and only
// then.
func TestCloseReportsForgetPending(t *testing.T) {
	for _, reader := range []bool{false, true} {
		t.Run(fmt.Sprintf("reader=%v", reader), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			db, err := store.Open(path, store.Options{ForgetWithin: time.Hour, BusyTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			eng := engine.New(db, engine.Policy{})
			bodies := history(t)
			ingest(t, eng, bodies[0])
			if reader {
				holdSnapshot(t, path)
			}
			for _, b := range bodies[1:] {
				ingest(t, eng, b)
			}
			err = db.Close()
			if got := errors.Is(err, store.ErrForgetPending); got != reader {
				t.Errorf("Close() = %v; ErrForgetPending %v, want %v", err, got, reader)
			}
			if !reader && err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		})
	}
}
