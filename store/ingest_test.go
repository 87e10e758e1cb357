package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

const fixtureInquiry = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"

// history returns the kebab-case fixture bodies of fixtureInquiry, in
// event-time order, ending with inquiry.redacted.
func history(tb testing.TB) [][]byte {
	tb.Helper()
	names := []string{
		"inquiry.created.json", "inquiry.started.json", "inquiry.transitioned.json",
		"inquiry.updated-tags.json", "inquiry.completed.json", "inquiry.failed.json",
		"inquiry.expired.json", "inquiry.marked-for-review.json", "inquiry.approved.json",
		"inquiry.approved.blank-status.json", "inquiry.declined.json",
		"inquiry.reusable-persona-created.json", "inquiry.reusable-persona-used.json",
		"inquiry.redacted.json",
	}
	bodies := make([][]byte, len(names))
	for i, n := range names {
		bodies[i] = fixture(tb, n)
	}
	return bodies
}

func ingest(tb testing.TB, eng *engine.Engine, body []byte) engine.Result {
	tb.Helper()
	res, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Now(), AttemptsMade: 1})
	if err != nil {
		tb.Fatalf("Ingest: %v", err)
	}
	return res
}

// TestOutOfOrderBatches ingests the fixture history in order, one event at
// a time, and in random orders with every event sent twice concurrently (so
// that late events and duplicates share batches), and wants the same
// projection, a change feed that chains, and the same events stored.
func TestOutOfOrderBatches(t *testing.T) {
	bodies := history(t)
	inOrder := openTemp(t, store.Options{})
	eng := engine.New(inOrder, engine.Policy{AutoDecide: true})
	for _, b := range bodies {
		ingest(t, eng, b)
	}
	want := jsonOf(t, mustInquiry(t, inOrder, fixtureInquiry))
	if got := jsonOf(t, foldOfLog(t, inOrder, fixtureInquiry, engine.Policy{AutoDecide: true})); got != want {
		t.Fatalf("in-order projection is not the fold of the log:\ngot  %s\nwant %s", want, got)
	}

	for seed := range uint64(5) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			db := openTemp(t, store.Options{})
			eng := engine.New(db, engine.Policy{AutoDecide: true})
			rng := rand.New(rand.NewPCG(seed, 1))
			order := append(rng.Perm(len(bodies)), rng.Perm(len(bodies))...)
			var wg sync.WaitGroup
			for _, i := range order {
				wg.Go(func() { ingest(t, eng, bodies[i]) })
				if rng.IntN(3) == 0 {
					wg.Wait() // vary how deliveries fall into batches
				}
			}
			wg.Wait()
			if got := jsonOf(t, mustInquiry(t, db, fixtureInquiry)); got != want {
				t.Errorf("projection differs from in-order arrival:\ngot  %s\nwant %s", got, want)
			}
			recs, _ := db.Events(ctx, fixtureInquiry)
			if got, want := len(recs), len(bodies); got != want {
				t.Errorf("stored %d events, want %d", got, want)
			}
			checkFeedChains(t, db, mustInquiry(t, db, fixtureInquiry))
		})
	}
}

func mustInquiry(tb testing.TB, db engine.Reader, id string) *engine.Inquiry {
	tb.Helper()
	inq, err := db.GetInquiry(ctx, id)
	if err != nil {
		tb.Fatal(err)
	}
	return inq
}

// checkFeedChains checks that each change starts where the previous one of
// its inquiry ended, that each is a real change, and that the last one
// describes the projection.
func checkFeedChains(tb testing.TB, db engine.Reader, final *engine.Inquiry) {
	tb.Helper()
	changes, err := db.Changes(ctx, 0, engine.MaxLimit)
	if err != nil {
		tb.Fatal(err)
	}
	var prev engine.Change
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			tb.Errorf("change %d has seq %d: the feed has a gap", i, c.Seq)
		}
		if c.FromStatus != prev.ToStatus {
			tb.Errorf("change %d goes from %q, but the previous one ended at %q", c.Seq, c.FromStatus, prev.ToStatus)
		}
		if c.FromStatus == c.ToStatus && c.Decision == prev.Decision && c.Redacted == prev.Redacted {
			tb.Errorf("change %d changes nothing: %+v", c.Seq, c)
		}
		prev = c
	}
	if prev.ToStatus != final.Status || prev.Decision != final.Decision || prev.Redacted != final.Redacted {
		tb.Errorf("last change %+v does not describe the projection %+v", prev, final)
	}
}

// TestGroupCommitIsolatesFailures runs many updates at once, some of which
// write and then fail, and wants every other update kept.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	var reports, reported atomic.Int64
	db := openTemp(t, store.Options{OnBatch: func(size int) { reports.Add(1); reported.Add(int64(size)) }})
	boom := errors.New("boom")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = db.Update(ctx, func(tx engine.Tx) error {
				if err := tx.AppendEvent(record(fmt.Sprintf("evt_%03d", i), "inq_g")); err != nil {
					return err
				}
				if err := tx.AppendChange(&engine.Change{InquiryID: "inq_g", EventID: fmt.Sprintf("evt_%03d", i), ToStatus: engine.StatusPending}); err != nil {
					return err
				}
				if i%7 == 3 {
					return boom
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()
	if batches, updates := store.Batches(db); batches >= updates {
		t.Errorf("%d updates ran in %d batches: nothing was grouped", updates, batches)
	} else if reports.Load() != batches || reported.Load() != updates {
		t.Errorf("OnBatch reported %d updates in %d batches, want %d in %d", reported.Load(), reports.Load(), updates, batches)
	}
	kept := map[string]bool{}
	recs, err := db.Events(ctx, "inq_g")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		kept[r.EventID] = true
	}
	for i := range n {
		id := fmt.Sprintf("evt_%03d", i)
		switch {
		case i%7 == 3 && !errors.Is(errs[i], boom):
			t.Errorf("update %d: err = %v, want boom", i, errs[i])
		case i%7 == 3 && kept[id]:
			t.Errorf("update %d failed but its event was kept", i)
		case i%7 != 3 && errs[i] != nil:
			t.Errorf("update %d: %v", i, errs[i])
		case i%7 != 3 && !kept[id]:
			t.Errorf("update %d succeeded but its event is missing", i)
		}
	}
	changes, err := db.Changes(ctx, 0, engine.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range changes {
		if c.Seq != int64(i+1) {
			t.Fatalf("change %d has seq %d: rolled-back changes left a gap", i, c.Seq)
		}
	}
	if got, want := len(changes), len(recs); got != want {
		t.Errorf("%d changes for %d kept events", got, want)
	}
}

func TestUpdateAfterCancel(t *testing.T) {
	db := openTemp(t, store.Options{})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err := db.Update(cancelled, func(engine.Tx) error { ran = true; return nil })
	if !errors.Is(err, cancelled.Err()) || ran {
		t.Errorf("Update with a cancelled context: err = %v, ran = %t; want the context's error and no run", err, ran)
	}
}

func TestUpdatePanicFailsOnlyItsCaller(t *testing.T) {
	db := openTemp(t, store.Options{})
	if err := db.Update(ctx, func(engine.Tx) error { panic("bad fn") }); err == nil {
		t.Fatal("Update of a panicking fn succeeded")
	}
	if err := db.Update(ctx, func(tx engine.Tx) error { return tx.AppendEvent(record("evt_after", "inq_p")) }); err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
}

func TestClosedAndReadOnlyRefuseUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Update(ctx, func(engine.Tx) error { return nil }); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Update on a read-only DB: err = %v, want ErrUnavailable", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(engine.Tx) error { return nil }); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Update after Close: err = %v, want ErrUnavailable", err)
	}
}

func TestUpdateCancelledWhileQueued(t *testing.T) {
	db := openTemp(t, store.Options{})
	hold, running := make(chan struct{}), make(chan struct{})
	go db.Update(ctx, func(engine.Tx) error { close(running); <-hold; return nil })
	<-running // the writer is busy: the next update queues

	queuedCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	ran := false
	err := db.Update(queuedCtx, func(engine.Tx) error { ran = true; return nil })
	close(hold)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Update whose context ended while queued: err = %v, want DeadlineExceeded", err)
	}
	if err := db.Update(ctx, func(engine.Tx) error { return nil }); err != nil { // after the abandoned one
		t.Fatal(err)
	}
	if ran {
		t.Error("the abandoned update ran")
	}
}

func TestReadOnlyAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	ingest(t, engine.New(db, engine.Policy{}), fixture(t, "inquiry.started.json"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := mustInquiry(t, ro, fixtureInquiry).Status; got != engine.StatusPending {
		t.Errorf("status read back = %q, want pending", got)
	}
}

// TestWriterSeesOtherWriters changes a projection behind the store's back,
// as another process (personad rebuild, say) would, and wants the next
// update to read the new value rather than a cached one.
func TestWriterSeesOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	ingest(t, engine.New(db, engine.Policy{}), fixture(t, "inquiry.started.json"))

	other := rawDB(t, path, "_txlock=immediate")
	mustExec(t, other, `UPDATE inquiries SET status = 'completed', doc = json_set(doc, '$.status', 'completed')`)

	var got engine.Status
	if err := db.Update(ctx, func(tx engine.Tx) error {
		inq, err := tx.Inquiry(fixtureInquiry)
		if inq != nil {
			got = inq.Status
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got != engine.StatusCompleted {
		t.Errorf("status inside the next update = %q, want the other writer's %q", got, engine.StatusCompleted)
	}
}
