package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

var ctx = context.Background()

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store { return openTemp(t, store.Options{}) })
}

// openTemp opens a new database in a temporary directory, closed when the
// test ends.
func openTemp(tb testing.TB, opts store.Options) *store.DB {
	tb.Helper()
	return openPath(tb, filepath.Join(tb.TempDir(), "personad.db"), opts)
}

func openPath(tb testing.TB, path string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// openWithoutLock opens a second writer on path, which the lock file would
// refuse: it stands for another process that writes the file anyway.
func openWithoutLock(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.OpenWithoutLock(path, store.Options{})
	if err != nil {
		tb.Fatalf("OpenWithoutLock(%s): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// record returns a small stored event of an inquiry.
func record(eventID, inquiryID string) *engine.Record {
	body := []byte(`{"data":{"id":"` + eventID + `"}}`)
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	return &engine.Record{
		EventID: eventID, Name: engine.EventStarted, ObjectType: "inquiry", ObjectID: inquiryID,
		CreatedAt: at, ReceivedAt: at, AttemptsMade: 1, Deliveries: 1,
		Body: body, SHA256: sha256.Sum256(body), Outcome: engine.OutcomeApplied,
	}
}

// fixture reads a file under the repository's testdata/events.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// compact returns body without insignificant whitespace.
func compact(tb testing.TB, body []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// jsonOf marshals v, failing the test on error.
func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// foldOfLog folds an inquiry's stored events as the engine would.
func foldOfLog(tb testing.TB, db engine.Reader, id string, p engine.Policy) *engine.Inquiry {
	tb.Helper()
	recs, err := db.Events(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	inq, _, err := engine.FoldRecords(id, recs, p)
	if err != nil {
		tb.Fatal(err)
	}
	return inq
}
