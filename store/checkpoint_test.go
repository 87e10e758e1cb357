package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// TestLongReaderDoesNotStallWrites holds a snapshot in another process's
// connection across a restart, as a backup or Litestream does, so that the
// WAL cannot be truncated. Open and every ingest must go on without waiting
// for that reader, although the busy timeout is far longer than the test
// allows them; once the reader leaves, the writer's retries fold the WAL
// into the file and the redacted inquiry's PII is gone from both.
func TestLongReaderDoesNotStallWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	bodies := history(t) // ends with inquiry.redacted
	db := openPath(t, path, store.Options{BusyTimeout: 100 * time.Millisecond})
	eng := engine.New(db, engine.Policy{})
	for _, b := range bodies[:5] {
		ingest(t, eng, b)
	}
	snapshot, err := rawDB(t, path, "mode=ro").Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer snapshot.Rollback()
	var n int
	if err := snapshot.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the reader did not keep the WAL (%v): this case tests nothing", err)
	}

	opened := make(chan *store.DB, 1)
	go func() {
		db, err := store.Open(path, store.Options{BusyTimeout: time.Minute, ForgetWithin: 100 * time.Millisecond})
		if err != nil {
			t.Errorf("Open: %v", err)
		}
		opened <- db
	}()
	select {
	case db = <-opened:
		if db == nil {
			t.FailNow()
		}
		t.Cleanup(func() { db.Close() })
	case <-time.After(10 * time.Second):
		t.Fatal("Open waited for the reader")
	}
	eng = engine.New(db, engine.Policy{})
	for i, b := range bodies[5:] {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := eng.Ingest(ctx, engine.Delivery{Body: b, ReceivedAt: time.Now(), AttemptsMade: 1})
		cancel()
		if err != nil {
			t.Fatalf("ingest %d with a reader holding a snapshot: %v", i, err)
		}
	}
	if !mustInquiry(t, db, fixtureInquiry).Redacted {
		t.Fatal("the inquiry is not redacted")
	}
	if len(findPII(t, path)) == 0 {
		t.Fatal("the reader did not delay the checkpoint: the rest tests nothing")
	}

	snapshot.Rollback()
	scanForPIIWithin(t, path, 5*time.Second, "once the reader left")
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Errorf("the WAL was not truncated once the reader left (%v)", err)
	}
}
