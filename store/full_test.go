package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// TestDiskFull fills the database to a page cap, as a full disk would, and
// wants every failing delivery to report ErrUnavailable with nothing of it
// stored, and ingestion to resume once there is room again.
func TestDiskFull(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	all := g.bodies(100)
	first, bodies := all[:20], all[20:]
	for _, b := range first {
		ingest(t, eng, b)
	}
	pages, err := store.PageCount(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetMaxPageCount(db, pages+40); err != nil {
		t.Fatal(err)
	}
	acked, failedAt := 0, -1
	for i, b := range bodies {
		_, err := eng.Ingest(ctx, engine.Delivery{Body: b, ReceivedAt: time.Now()})
		if err != nil {
			if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "disk full") {
				t.Fatalf("Ingest on a full disk: %v, want ErrUnavailable saying the disk is full", err)
			}
			t.Logf("after %d more events: %v", acked, err)
			failedAt = i
			break
		}
		acked++
	}
	if failedAt < 0 {
		t.Fatal("the page cap was never reached")
	}
	got, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(first) + acked); got.Events != want {
		t.Errorf("stored %d events, want the %d acknowledged", got.Events, want)
	}
	if err := store.SetMaxPageCount(db, 1<<30); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies[failedAt:] {
		ingest(t, eng, b)
	}
	for n := range 100 {
		id := g.inquiryID(n)
		if got, want := jsonOf(t, mustInquiry(t, db, id)), jsonOf(t, foldOfLog(t, db, id, engine.Policy{})); got != want {
			t.Errorf("%s: projection is not the fold of its log after the disk filled", id)
		}
	}
}
