package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// TestRetainScrubsConflicts: retention scrubs a conflicting body as it
// scrubs the event's, and the projection, anomaly included, stays.
func TestRetainScrubsConflicts(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	first := storetest.Body("evt_r", engine.EventStarted, "inq_r", engine.StatusPending, t0)
	other := storetest.Body("evt_r", engine.EventApproved, "inq_r", engine.StatusApproved, t0)
	ingestAt(t, eng, first, t0)
	ingestAt(t, eng, other, t0)
	before := jsonOf(t, mustInquiry(t, db, "inq_r"))
	rep, err := db.Retain(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.ConflictsScanned != 1 || rep.ConflictsScrubbed != 1 || rep.EventsScrubbed != 1 {
		t.Errorf("report %+v, want one event and one conflict scrubbed", rep)
	}
	kept, err := db.Conflicts(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || bytes.Contains(kept[0].Body, []byte("Jane")) {
		t.Errorf("conflicts after retention: %+v, want one without the person's name", kept)
	}
	if got := jsonOf(t, mustInquiry(t, db, "inq_r")); got != before {
		t.Errorf("projection after retention:\ngot  %s\nwant %s", got, before)
	}
	if rep, err := db.Rebuild(ctx); err != nil || len(rep.Changed) != 0 {
		t.Errorf("Rebuild after retention: %+v, %v; want nothing changed", rep, err)
	}
}
