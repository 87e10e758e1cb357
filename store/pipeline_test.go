package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// heldSync replaces a store's WAL sync: the first sync after arm blocks
// until release, the others pass.
type heldSync struct {
	calls    atomic.Int32 // syncs started
	armed    atomic.Bool
	once     sync.Once
	entered  chan struct{} // receives once the held sync started
	release  chan struct{}
	released atomic.Bool
	err      error // what the held sync returns
}

func holdSync(tb testing.TB, db *store.DB) *heldSync {
	h := &heldSync{entered: make(chan struct{}, 1), release: make(chan struct{})}
	tb.Cleanup(h.let) // before the store's Close, which waits for the sync
	store.SetWALSync(db, func() error {
		h.calls.Add(1)
		if h.armed.CompareAndSwap(true, false) {
			h.entered <- struct{}{}
			<-h.release
			return h.err
		}
		return nil
	})
	return h
}

// let releases the held sync.
func (h *heldSync) let() {
	h.once.Do(func() {
		h.released.Store(true)
		close(h.release)
	})
}

func appendChange(eventID string) func(engine.Tx) error {
	return func(tx engine.Tx) error {
		return tx.AppendChange(&engine.Change{InquiryID: "inq_p", EventID: eventID, ToStatus: engine.StatusPending})
	}
}

// TestPipelinedCommitWaitsForTheSync: with the WAL sync of a commit held
// in flight, neither its caller nor a reader of the change feed hears of
// the change; both do once the sync is released.
func TestPipelinedCommitWaitsForTheSync(t *testing.T) {
	db := openTemp(t, store.Options{MinFree: -1})
	h := holdSync(t, db)
	h.armed.Store(true)
	type ack struct {
		err      error
		released bool
	}
	acked := make(chan ack, 1)
	go func() {
		err := db.Update(ctx, appendChange("evt_1"))
		acked <- ack{err, h.released.Load()}
	}()
	<-h.entered // committed, and its sync is in flight

	type read struct {
		changes  []engine.Change
		err      error
		released bool
	}
	readDone := make(chan read, 1)
	go func() {
		cs, err := db.Changes(ctx, 0, 10)
		readDone <- read{cs, err, h.released.Load()}
	}()
	for store.ReadsWaiting(db) == 0 { // the reader saw the commit; it must wait for its sync
		select {
		case r := <-readDone:
			t.Fatalf("Changes returned %d changes (err %v) while the commit's WAL sync was in flight", len(r.changes), r.err)
		default:
			runtime.Gosched()
		}
	}
	select {
	case a := <-acked:
		t.Fatalf("Update returned (%v) while its WAL sync was in flight", a.err)
	default:
	}
	h.let()
	if a := <-acked; a.err != nil || !a.released {
		t.Errorf("Update: err %v, returned after the sync: %v; want nil, true", a.err, a.released)
	}
	r := <-readDone
	if r.err != nil || !r.released {
		t.Fatalf("Changes: err %v, returned after the sync: %v; want nil, true", r.err, r.released)
	}
	if len(r.changes) != 1 || r.changes[0].EventID != "evt_1" {
		t.Errorf("Changes once durable = %+v, want the one change of evt_1", r.changes)
	}
}

// TestPipelinedCommitOverlapsTheSync: the writer commits the next batch
// while a sync is in flight, and that batch is answered only by a later
// sync.
func TestPipelinedCommitOverlapsTheSync(t *testing.T) {
	db := openTemp(t, store.Options{MinFree: -1})
	h := holdSync(t, db)
	h.armed.Store(true)
	first := make(chan error, 1)
	go func() { first <- db.Update(ctx, appendChange("evt_1")) }()
	<-h.entered
	commits := store.Commits(db)
	committed := make(chan struct{})
	type ack struct {
		err   error
		syncs int32 // started by the time Update returned
	}
	second := make(chan ack, 1)
	go func() {
		err := db.Update(ctx, func(tx engine.Tx) error {
			defer close(committed)
			return appendChange("evt_2")(tx)
		})
		second <- ack{err, h.calls.Load()}
	}()
	<-committed                        // the writer ran the next batch with the first sync in flight
	for store.Commits(db) == commits { // and began its COMMIT
		select {
		case a := <-second:
			t.Fatalf("the second Update returned (%v) before any sync that began after its commit", a.err)
		default:
			runtime.Gosched()
		}
	}
	h.let()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if a := <-second; a.err != nil || a.syncs < 2 {
		t.Fatalf("the second Update: err %v after %d syncs; want nil after 2, the held one and one begun after its commit", a.err, a.syncs)
	}
	cs, err := db.Changes(ctx, 0, 10)
	if err != nil || len(cs) != 2 {
		t.Fatalf("Changes = %d changes, %v; want 2", len(cs), err)
	}
}

// TestFailedSyncFailsClosed: a WAL sync that fails fails its callers with
// ErrUnavailable, and from then on the store refuses every write, every
// read that may see the commit, and its health check.
func TestFailedSyncFailsClosed(t *testing.T) {
	db := openTemp(t, store.Options{MinFree: -1})
	if err := db.Update(ctx, appendChange("evt_0")); err != nil {
		t.Fatal(err)
	}
	h := holdSync(t, db)
	h.err = errors.New("injected I/O error")
	h.armed.Store(true)
	h.let()
	if err := db.Update(ctx, appendChange("evt_1")); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Update whose WAL sync failed: %v, want ErrUnavailable", err)
	}
	if err := db.Update(ctx, appendChange("evt_2")); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Update after a failed sync: %v, want ErrUnavailable", err)
	}
	if cs, err := db.Changes(ctx, 0, 10); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Changes after a failed sync = %d changes, %v; want ErrUnavailable", len(cs), err)
	}
	if _, err := db.GetInquiry(ctx, "inq_p"); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("GetInquiry after a failed sync: %v, want ErrUnavailable", err)
	}
	if got, want := healthReason(t, db.Health(ctx)), store.HealthWriteFailed; got != want {
		t.Errorf("Health after a failed sync: reason %q, want %q", got, want)
	}
	if err := db.Close(); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Close after a failed sync: %v, want the failure", err)
	}
}

// TestCloseWaitsForTheSync: Close with a sync in flight returns after it,
// with the batch answered and kept.
func TestCloseWaitsForTheSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := holdSync(t, db)
	h.armed.Store(true)
	type result struct {
		err      error
		released bool
	}
	updated, closed := make(chan result, 1), make(chan result, 1)
	go func() {
		err := db.Update(ctx, appendChange("evt_1"))
		updated <- result{err, h.released.Load()}
	}()
	<-h.entered
	go func() {
		err := db.Close()
		closed <- result{err, h.released.Load()}
	}()
	for !store.Closing(db) {
		runtime.Gosched()
	}
	h.let() // the held sync then writes through the WAL's descriptor: Close must not have closed it
	for name, c := range map[string]chan result{"Update": updated, "Close": closed} {
		if r := <-c; r.err != nil || !r.released {
			t.Errorf("%s: err %v, returned after the sync: %v; want nil, true", name, r.err, r.released)
		}
	}
	db = openPath(t, path, store.Options{})
	if cs, err := db.Changes(ctx, 0, 10); err != nil || len(cs) != 1 {
		t.Errorf("after reopening: %d changes, %v; want 1", len(cs), err)
	}
}

// TestHealthStalledSync: a WAL sync stuck for long (a disk that stopped
// answering) makes Health fail without queueing a test write behind it.
func TestHealthStalledSync(t *testing.T) {
	db := openTemp(t, store.Options{MinFree: -1})
	h := holdSync(t, db)
	h.armed.Store(true)
	go db.Update(ctx, appendChange("evt_1"))
	<-h.entered
	time.Sleep(800 * time.Millisecond) // longer than a sync may take
	before, _ := store.Batches(db)
	c, cancel := context.WithTimeout(ctx, 950*time.Millisecond)
	defer cancel()
	if got, want := healthReason(t, db.Health(c)), store.HealthStalled; got != want {
		t.Errorf("Health with a WAL sync stuck: reason %q, want %q", got, want)
	}
	if after, _ := store.Batches(db); after != before {
		t.Errorf("Health ran %d test writes behind a stuck sync, want none", after-before)
	}
}

// TestQuerySnapshotIsTaken pins what the read gate relies on: the driver
// takes a query's snapshot before QueryContext returns, so rows read later
// do not include a commit made in between.
func TestQuerySnapshotIsTaken(t *testing.T) {
	db := openTemp(t, store.Options{Synchronous: "normal", MinFree: -1})
	if err := db.Update(ctx, appendChange("evt_1")); err != nil {
		t.Fatal(err)
	}
	rows, err := store.Query(ctx, db, `SELECT seq FROM changes ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if err := db.Update(ctx, appendChange("evt_2")); err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the query begun before the second commit read %d rows, want 1: its snapshot was taken after QueryContext returned", n)
	}
}

// TestScrubCheckpointAfterGatedReaders: with a zero ForgetWithin, the
// checkpoint before answering a batch that scrubbed must not wait for a
// reader that saw the batch and waits for its sync, which would wait for
// the checkpoint: the checkpoint completes, with no overdue report.
func TestScrubCheckpointAfterGatedReaders(t *testing.T) {
	bodies := history(t) // ends with inquiry.redacted
	path := filepath.Join(t.TempDir(), "personad.db")
	var (
		db      *store.DB
		arm     atomic.Bool
		overdue atomic.Int32
	)
	readDone := make(chan error, 1)
	db = openPath(t, path, store.Options{MinFree: -1, OnForgetOverdue: func() { overdue.Add(1) },
		OnBatch: func(int) { // between the commit and the checkpoint
			if !arm.CompareAndSwap(true, false) {
				return
			}
			go func() {
				_, err := db.Changes(ctx, 0, 1000)
				readDone <- err
			}()
			for store.ReadsWaiting(db) == 0 {
				runtime.Gosched()
			}
		}})
	eng := engine.New(db, engine.Policy{})
	for _, b := range bodies[:len(bodies)-1] {
		ingest(t, eng, b)
	}
	arm.Store(true)
	ingest(t, eng, bodies[len(bodies)-1])
	if arm.Load() {
		t.Fatal("the redaction's batch did not run OnBatch: this case tests nothing")
	}
	if err := <-readDone; err != nil {
		t.Errorf("the reader that saw the redaction: %v", err)
	}
	if n := overdue.Load(); n != 0 {
		t.Errorf("OnForgetOverdue called %d times: the checkpoint before answering did not complete", n)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Errorf("the WAL was not truncated before the redaction was answered (%v)", err)
	}
}
