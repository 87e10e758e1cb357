package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// healthReason returns the reason of a Health error, "" for nil.
func healthReason(tb testing.TB, err error) string {
	tb.Helper()
	if err == nil {
		return ""
	}
	var he *store.HealthError
	if !errors.As(err, &he) {
		tb.Fatalf("Health: %v is not a *HealthError", err)
	}
	if !errors.Is(err, engine.ErrUnavailable) {
		tb.Errorf("Health: %v does not match ErrUnavailable", err)
	}
	return he.Reason
}

func TestHealth(t *testing.T) {
	t.Run("healthy", func(t *testing.T) {
		db := openTemp(t, store.Options{MinFree: -1})
		if err := db.Health(ctx); err != nil {
			t.Errorf("Health of a fresh store: %v", err)
		}
	})
	t.Run("disk low", func(t *testing.T) {
		db := openTemp(t, store.Options{MinFree: 1 << 60}) // an exbibyte
		if got, want := healthReason(t, db.Health(ctx)), store.HealthDiskLow; got != want {
			t.Errorf("Health with less free space than MinFree: reason %q, want %q", got, want)
		}
	})
	t.Run("closed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "personad.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := healthReason(t, db.Health(ctx)), store.HealthClosed; got != want {
			t.Errorf("Health after Close: reason %q, want %q", got, want)
		}
		ro, err := store.OpenReadOnly(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		if got, want := healthReason(t, ro.Health(ctx)), store.HealthClosed; got != want {
			t.Errorf("Health of a read-only store: reason %q, want %q", got, want)
		}
	})
	t.Run("the test write commits", func(t *testing.T) {
		// An empty transaction commits without touching the disk; the
		// check must write something.
		db := openTemp(t, store.Options{MinFree: -1})
		before, _ := store.Batches(db)
		if err := db.Health(ctx); err != nil {
			t.Fatal(err)
		}
		after, _ := store.Batches(db)
		if after != before+1 {
			t.Errorf("Health ran %d batches, want 1", after-before)
		}
		if got := store.Setting(t, db, "health_probe"); got <= 0 {
			t.Errorf("settings.health_probe = %d after Health, want the time of the check", got)
		}
	})
}

// TestHealthStalledWriter: a writer stuck in a commit (a disk that stopped
// answering) makes Health fail within a second, without waiting for it.
func TestHealthStalledWriter(t *testing.T) {
	db := openTemp(t, store.Options{MinFree: -1})
	hold, running := make(chan struct{}), make(chan struct{})
	defer close(hold)
	go db.Update(ctx, func(engine.Tx) error { close(running); <-hold; return nil })
	<-running
	for _, wait := range []time.Duration{0, 800 * time.Millisecond} { // fresh, then stuck for long
		time.Sleep(wait)
		c, cancel := context.WithTimeout(ctx, 950*time.Millisecond)
		start := time.Now()
		err := db.Health(c)
		cancel()
		if got, want := healthReason(t, err), store.HealthStalled; got != want {
			t.Errorf("Health with the writer stuck %v: %v, want reason %q", wait, err, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Health with the writer stuck took %v, want under a second", d)
		}
	}
}

// TestUpdateDoesNotOutwaitItsContext: once the writer took an update, a
// commit that does not return (a stalled disk) must not hold its caller
// past the caller's deadline, and must not be reported as stored.
func TestUpdateDoesNotOutwaitItsContext(t *testing.T) {
	db := openTemp(t, store.Options{})
	hold, running := make(chan struct{}), make(chan struct{})
	go func() { <-running; time.Sleep(2 * time.Second); close(hold) }()
	c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := db.Update(c, func(engine.Tx) error { close(running); <-hold; return nil })
	if !errors.Is(err, engine.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update whose commit outlasted its context: err = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	<-hold
	if err := db.Update(ctx, func(engine.Tx) error { return nil }); err != nil {
		t.Errorf("Update once the writer is free again: %v", err)
	}
}

// TestDatabaseReplaced deletes or replaces the file under an open store,
// and wants every later write refused (it would go to a file nobody opens
// again), Health to say why, and OnFailed called once, with no write
// needed to notice.
func TestDatabaseReplaced(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, path string)
	}{
		{"deleted", func(t *testing.T, path string) {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"renamed away", func(t *testing.T, path string) {
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by a copy", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".new", b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"WAL deleted", func(t *testing.T, path string) {
			if err := os.Remove(path + "-wal"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			var failed atomic.Int32
			noticed := make(chan struct{})
			db := openPath(t, path, store.Options{MinFree: -1, OnFailed: func(error) {
				if failed.Add(1) == 1 {
					close(noticed)
				}
			}})
			eng := engine.New(db, engine.Policy{})
			ingest(t, eng, fixture(t, "inquiry.created.json"))
			tt.replace(t, path)
			select { // the guard's timer notices with no write coming in
			case <-noticed:
			case <-time.After(10 * time.Second):
				t.Fatal("OnFailed not called within 10s of the file going away")
			}
			_, err := eng.Ingest(ctx, engine.Delivery{Body: fixture(t, "inquiry.started.json"), ReceivedAt: time.Now()})
			if !errors.Is(err, engine.ErrUnavailable) || !errors.Is(err, store.ErrReplaced) {
				t.Errorf("Ingest after the file went away: %v, want ErrUnavailable and ErrReplaced", err)
			}
			if got, want := healthReason(t, db.Health(ctx)), store.HealthReplaced; got != want {
				t.Errorf("Health after the file went away: reason %q, want %q", got, want)
			}
			if n := failed.Load(); n != 1 {
				t.Errorf("OnFailed called %d times, want once", n)
			}
		})
	}
}

// TestNoAckIntoAReplacedFile replaces the file between an update's writes
// and its commit: the commit succeeds, into the old file, and the caller
// must still hear that nothing was stored.
func TestNoAckIntoAReplacedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	err := db.Update(ctx, func(tx engine.Tx) error {
		if err := tx.AppendEvent(record("evt_lost", "inq_lost")); err != nil {
			return err
		}
		return os.Rename(path, path+".old")
	})
	if !errors.Is(err, store.ErrReplaced) {
		t.Errorf("Update committed into a file renamed away: err = %v, want ErrReplaced", err)
	}
}

// TestOneWriterPerFile: a second Open of a file another writer holds fails
// at once with ErrLocked naming the holder's PID; a read-only open works
// alongside; once the first closes, the file opens again.
func TestOneWriterPerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	first, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(path, store.Options{})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly beside a writer: %v", err)
	}
	if _, err := ro.Stats(ctx); err != nil {
		t.Errorf("Stats beside a writer: %v", err)
	}
	ro.Close()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open after the first writer closed: %v", err)
	}
	again.Close()
}
