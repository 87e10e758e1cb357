package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personad/personad/engine"
)

// Update runs fn in the next group commit: the writer goroutine runs the
// fns of everything queued and commits them in one transaction. When one
// of them fails, the batch is rolled back and run again with each fn in
// its own savepoint, so fn may run twice (engine.Store says so). Update
// returns after the COMMIT succeeded and, with synchronous=FULL, once a
// sync of the WAL that started after it returned has finished (the
// pipelined commit of the package doc).
//
// Errors: fn's own error, in which case fn's writes were rolled back and
// the rest of the batch was unaffected; ctx's error when ctx ended before
// fn ran; an error matching engine.ErrUnavailable when the store could not
// commit (disk full, I/O error, closed or read-only store), in which case
// nothing fn wrote was kept and the caller should retry; an error matching
// engine.ErrUnavailable, for this and every later Update, once a sync of
// the WAL failed (fn's writes may or may not survive a power loss); an
// error matching both engine.ErrUnavailable and ctx's error when ctx ended
// after fn ran but before its commit and sync returned (a stalled disk):
// the batch may still commit later, so the caller must treat it as not
// stored and retry, idempotently; and an error matching ErrReplaced and
// engine.ErrUnavailable, for this and every later Update, once the file at
// the path is no longer the one opened. A nil error is only ever returned
// after the commit (and its sync), and after a check that the file
// committed to is still the one at the path.
func (db *DB) Update(ctx context.Context, fn func(engine.Tx) error) error {
	if db.writer == nil {
		return fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	return db.writer.do(ctx, func(t *tx) error { return fn(t) })
}

// request is one Update waiting for the writer.
type request struct {
	fn    func(*tx) error
	state atomic.Int32 // queued, then taken by the writer or abandoned by the caller
	done  chan error   // receives exactly one result once taken
}

const (
	queued int32 = iota
	taken
	abandoned
)

// checkpointRetry is how soon an idle writer retries a WAL checkpoint that
// readers kept from completing after a redaction.
const checkpointRetry = 100 * time.Millisecond

// writer owns the one read-write connection and the goroutine that uses it.
type writer struct {
	db       *sql.DB
	stmts    *statements
	cache    *projections
	maxBatch int
	onBatch  func(int)
	forget   time.Duration // Options.ForgetWithin
	busy     time.Duration // Options.BusyTimeout
	queue    chan *request

	mu     sync.RWMutex // held for reading while enqueueing, so Close can close queue
	closed bool
	exited chan struct{}

	batches, updates atomic.Int64 // committed or not, for tests and metrics

	// guard says whether the file is still the one opened; checked after
	// every commit, before anyone hears of it.
	guard *fileGuard
	// syncer syncs the WAL after each commit and answers the batch's
	// callers; nil with synchronous=normal, where the writer answers at
	// commit.
	syncer *walSyncer
	// busySince is when the batch or checkpoint under way started, in unix
	// nanoseconds, or 0 while the writer waits: Health calls a writer that
	// is stuck in one stalled without queueing behind it.
	busySince atomic.Int64

	// head is the hash chain's head as of the last committed batch, valid
	// while the connection's data_version is headAt. Reading it once costs
	// AppendEvent no query; a batch reads it again, in its transaction, at
	// the first batch (headKnown false), after a batch that failed, and
	// after another process committed. Owned by the loop goroutine.
	head      ChainHead
	headAt    int64
	headKnown bool

	// forgetDeadline is when the WAL had to have lost the old bodies of
	// the first scrub no checkpoint has folded in yet, in unix nanoseconds,
	// or 0. Unlike forgetBy it does not move with the retries. Written by
	// the loop goroutine, read by DB.ForgetOverdue.
	forgetDeadline atomic.Int64
	onOverdue      func() // Options.OnForgetOverdue, or nil

	// Owned by the loop goroutine.
	forgetBy     time.Time // zero, or when the WAL must have lost the old bodies a committed batch rewrote
	scrubbed     bool      // the last committed batch rewrote bodies
	overdueNoted bool      // onOverdue was called for the current forgetDeadline
}

// newWriter starts the writer of the database at path; with
// checkpointDue, the checkpoint that forgets scrubbed bodies is due at
// once (Open's could not complete).
func newWriter(db *sql.DB, path string, o Options, checkpointDue bool, guard *fileGuard) (*writer, error) {
	stmts, err := prepare(db)
	if err != nil {
		return nil, err
	}
	var syncer *walSyncer
	if o.Synchronous == "FULL" {
		if syncer, err = newWALSyncer(path, guard); err != nil {
			stmts.close()
			return nil, err
		}
	}
	w := &writer{db: db, stmts: stmts, cache: newProjections(), maxBatch: o.MaxBatch, onBatch: o.OnBatch,
		forget: o.ForgetWithin, busy: o.BusyTimeout, queue: make(chan *request, 4*o.MaxBatch), exited: make(chan struct{}),
		onOverdue: o.OnForgetOverdue, guard: guard, syncer: syncer}
	if checkpointDue {
		w.forgetBy = time.Now()
		w.forgetDeadline.Store(w.forgetBy.Add(w.forget).UnixNano())
	}
	go w.loop()
	return w, nil
}

// do queues fn and waits for its result.
func (w *writer) do(ctx context.Context, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.failure(); err != nil {
		return err
	}
	r := &request{fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.queue <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		select {
		case err := <-r.done: // it just finished
			return err
		default:
		}
		// fn runs or ran, and its commit (or its sync) has not returned:
		// with a stalled disk it may not for minutes. Never wait past the
		// caller's deadline, and never call it stored: it may yet commit
		// (a redelivery then finds it), or not.
		return fmt.Errorf("store: %w: the commit did not finish in time (%w); it may still complete", engine.ErrUnavailable, ctx.Err())
	}
}

// failure returns why the writer refuses every write (the file was
// replaced, a sync failed), or nil.
func (w *writer) failure() error {
	if err := w.guard.failure(); err != nil {
		return err
	}
	return w.syncer.failure()
}

// isClosed reports whether close was called.
func (w *writer) isClosed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// close lets the writer commit what is queued and waits for its syncs,
// then checkpoints the WAL and closes the connection. After a failed sync
// it does not checkpoint: the WAL may not hold what SQLite thinks it does,
// and the next Open recovers from what is on the disk.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.queue)
	w.mu.Unlock()
	<-w.exited
	if err := w.syncer.failure(); err != nil {
		w.stmts.close()
		return errors.Join(err, w.db.Close())
	}
	done, cerr := checkpointWAL(w.db, w.busy, w.busy)
	w.stmts.close()
	if err := w.db.Close(); err != nil {
		return err
	}
	if cerr == nil && !done && w.forgetDeadline.Load() != 0 {
		cerr = ErrForgetPending
	}
	return cerr
}

func (w *writer) loop() {
	defer close(w.exited)
	if w.syncer != nil {
		defer w.syncer.stop() // the last batches are answered before close checkpoints
	}
	batch := make([]*request, 0, w.maxBatch)
	for {
		r, ok := w.next()
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.busySince.Store(time.Now().UnixNano())
		w.commit(batch)
		w.busySince.Store(0)
		clear(batch)
	}
}

// next waits for the next request, checkpointing when a redaction's old
// bodies must leave the WAL. ok is false once the queue is closed and
// drained.
func (w *writer) next() (r *request, ok bool) {
	for !w.forgetBy.IsZero() {
		select {
		case r, ok = <-w.queue:
			return r, ok
		case <-time.After(time.Until(w.forgetBy)):
			w.busySince.Store(time.Now().UnixNano())
			w.checkpoint(false)
			w.busySince.Store(0)
		}
	}
	r, ok = <-w.queue
	return r, ok
}

// commit runs one batch and answers every caller in it, or, with a
// syncer, hands it to the syncer, which answers once the batch is
// durable.
func (w *writer) commit(batch []*request) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(queued, taken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if err := w.syncer.failure(); err != nil {
		for _, r := range live {
			r.done <- err
		}
		return
	}
	w.batches.Add(1)
	w.updates.Add(int64(len(live)))
	errs, batchErr := w.run(live)
	answer := batchErr
	if batchErr == nil {
		// Committed, but into the file the path names? A batch that went
		// into a deleted or replaced file is lost at the next start.
		answer = w.guard.check()
	}
	if batchErr == nil && w.scrubbed && w.forgetDeadline.Load() == 0 {
		w.forgetDeadline.Store(time.Now().Add(w.forget).UnixNano())
	}
	if w.onBatch != nil {
		w.onBatch(len(live))
	}
	if batchErr == nil && w.scrubbed && w.forget == 0 {
		// Forget before acknowledging: the callers learn of the commit
		// once the old bodies are gone from the WAL too. A reader that saw
		// the batch waits for its sync holding its snapshot, which the
		// checkpoint would wait for: sync first.
		if w.syncer != nil {
			w.syncer.flush()
		}
		w.checkpoint(true)
	}
	for i := range live {
		if errs[i] == nil {
			errs[i] = answer
		}
	}
	if w.syncer != nil {
		// Every answer waits for the sync, failures too: an fn may have
		// failed on what an earlier batch, not yet durable, wrote.
		w.syncer.hand(slices.Clone(live), errs)
	} else {
		for i, r := range live {
			r.done <- errs[i]
		}
	}
	if !w.forgetBy.IsZero() && !time.Now().Before(w.forgetBy) {
		w.checkpoint(false)
	}
}

// run executes the fns of a batch in one transaction. errs[i] is the error
// of live[i]'s fn; batchErr, when set, failed everyone else: nothing of the
// batch was kept.
//
// A batch first runs without savepoints, which cost about a sixth of the
// writer's time and are almost never needed. Only when one of its fns
// fails is the transaction rolled back and the batch run again with a
// savepoint around each fn, so that the failing one is undone alone.
// Running an fn twice is safe: nothing it did the first time was kept.
func (w *writer) run(live []*request) (errs []error, batchErr error) {
	errs = make([]error, len(live))
	if failed, err := w.runOnce(live, errs, len(live) > 1); err != nil || !failed {
		return errs, err
	}
	if len(live) == 1 { // the transaction was the savepoint
		return errs, nil
	}
	clear(errs)
	_, err := w.runOnce(live, errs, false)
	return errs, err
}

// runOnce runs live's fns in one transaction and commits it. With
// optimistic set, the first failing fn rolls the whole transaction back and
// runOnce reports failed; otherwise each fn runs in its own savepoint (or,
// alone in its batch, in the transaction itself) and only its writes are
// undone when it fails.
func (w *writer) runOnce(live []*request, errs []error, optimistic bool) (failed bool, batchErr error) {
	w.scrubbed = false
	sqlTx, err := w.db.BeginTx(context.Background(), nil)
	if err != nil {
		return false, unavailable("begin", err)
	}
	t := &tx{sql: sqlTx, stmts: w.stmts, cache: w.cache}
	abort := func(op string, err error) (bool, error) {
		sqlTx.Rollback()
		w.cache.reset()
		w.headKnown = false
		return false, unavailable(op, err)
	}
	var version int64
	if err := t.stmt(sDataVersion).QueryRow().Scan(&version); err != nil {
		return abort("data version", err)
	}
	w.cache.validate(version)
	if !w.headKnown || version != w.headAt {
		// A hand-made last row without a link is chained from the zero
		// link: Verify reports the break there.
		if w.head, _, err = readHead(context.Background(), sqlTx); err != nil {
			return abort("read chain head", err)
		}
		w.headAt, w.headKnown = version, true
	}
	t.head = w.head // w.head stays the batch's start until the commit
	savepoints := !optimistic && len(live) > 1
	for i, r := range live {
		if savepoints {
			if _, err := t.stmt(sSavepoint).Exec(); err != nil {
				return abort("savepoint", err)
			}
		}
		scrubbed, head, links := t.scrubbed, t.head, len(t.pendingLinks)
		w.cache.startFn()
		errs[i] = call(r.fn, t)
		if errs[i] == nil {
			if savepoints {
				if _, err := t.stmt(sRelease).Exec(); err != nil {
					return abort("release savepoint", err)
				}
			}
			continue
		}
		if !savepoints { // optimistic, or alone: undo the transaction
			sqlTx.Rollback()
			w.cache.reset()
			return true, nil
		}
		t.scrubbed, t.head, t.pendingLinks = scrubbed, head, t.pendingLinks[:links]
		w.cache.rollBackFn()
		if _, err := t.stmt(sRollbackTo).Exec(); err != nil { // the transaction itself is gone
			return abort("roll back to savepoint", err)
		}
		if _, err := t.stmt(sRelease).Exec(); err != nil {
			return abort("release savepoint", err)
		}
	}
	if err := t.flushLinks(); err != nil {
		return abort("add links", err)
	}
	w.syncer.beginCommit() // a reader that sees this commit waits for its sync
	if err := sqlTx.Commit(); err != nil {
		w.cache.reset()
		w.headKnown = false // kept or not, the next batch reads what is
		if t.scrubbed && w.forgetBy.IsZero() {
			w.forgetBy = time.Now() // kept or not: checkpoint as if it was
		}
		return false, unavailable("commit", err)
	}
	w.head = t.head
	w.scrubbed = t.scrubbed
	if t.scrubbed && w.forgetBy.IsZero() {
		w.forgetBy = time.Now().Add(w.forget)
	}
	return false, nil
}

// call runs fn, turning a panic into that caller's error so that one bad
// fn cannot take the writer, and everyone queued behind it, down.
func call(fn func(*tx) error, t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: update panicked: %v", p)
		}
	}()
	return fn(t)
}

// checkpoint copies the WAL into the database file and truncates it, so
// that bodies a redaction rewrote are gone from the WAL as well. A reader
// that still looks at older frames keeps it from completing: with wait,
// the checkpoint waits for such readers up to the busy timeout; without,
// it gives up at once, so that a long-lived reader (a backup, Litestream)
// never stalls the writer. An incomplete checkpoint is retried 100 ms
// later; the first one that fails past forgetDeadline calls onOverdue.
func (w *writer) checkpoint(wait bool) {
	timeout := time.Duration(0)
	if wait {
		timeout = w.busy
	}
	done, err := checkpointWAL(w.db, timeout, w.busy)
	if err != nil || !done {
		now := time.Now()
		w.forgetBy = now.Add(checkpointRetry)
		if d := w.forgetDeadline.Load(); d != 0 && now.UnixNano() >= d && !w.overdueNoted {
			w.overdueNoted = true
			if w.onOverdue != nil {
				w.onOverdue()
			}
		}
		return
	}
	w.forgetBy = time.Time{}
	w.forgetDeadline.Store(0)
	w.overdueNoted = false
}

// ForgetOverdue returns how long ago the WAL should have lost the old
// bodies a redaction or Retain scrubbed (Options.ForgetWithin after the
// first scrub the WAL still holds), or 0 when nothing is overdue: none is
// pending, the deadline is still ahead, or the DB is read-only. A reader
// holding an old snapshot (a backup, Litestream) is what keeps it above 0.
// It is safe for concurrent use.
func (db *DB) ForgetOverdue() time.Duration {
	if db.writer == nil {
		return 0
	}
	d := db.writer.forgetDeadline.Load()
	if d == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(0, d)))
}

// checkpointWAL runs a TRUNCATE checkpoint on db's one connection, waiting
// at most wait for readers of older frames, and then sets the connection's
// busy timeout back to busy. done is false when a reader kept the
// checkpoint from completing.
func checkpointWAL(db *sql.DB, wait, busy time.Duration) (done bool, err error) {
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	setBusy := func(d time.Duration) error {
		_, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", d.Milliseconds()))
		return err
	}
	if wait != busy {
		if err := setBusy(wait); err != nil {
			return false, err
		}
		defer func() {
			if rerr := setBusy(busy); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	var blocked, walFrames, copied int
	if err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&blocked, &walFrames, &copied); err != nil {
		return false, err
	}
	return blocked == 0, nil
}
