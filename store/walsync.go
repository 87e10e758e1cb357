package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personad/personad/engine"
)

// walSyncer makes the writer's commits durable off the writer goroutine
// (the pipelined commit of the package doc): the writer commits with
// synchronous=NORMAL, which writes a batch's WAL frames without syncing
// them, hands the batch over and runs the next one, while the syncer
// fdatasyncs the WAL and only then answers the batch's callers. One sync
// is in flight at a time: the writer hands the next batch over once it
// finished, so one batch runs beside each sync and batches stay as large
// as the callers waiting allow. It also gates the readers (await), which
// can see a commit before it is durable.
type walSyncer struct {
	wal    *os.File                             // the -wal file, opened once after Open's checkpoint
	syncFn atomic.Pointer[func(*os.File) error] // fdatasync; tests replace it

	// started counts the commits the writer began (incremented before each
	// COMMIT); durable is the highest started count a finished sync covers.
	started, durable atomic.Int64
	failed           atomic.Pointer[error] // set once, by the first failed sync

	mu       sync.Mutex
	advanced chan struct{} // closed, and replaced, whenever durable or failed changes
	waiting  atomic.Int32  // readers blocked in await, for tests

	// since is when the sync under way started, in unix nanoseconds, or 0:
	// Health calls a sync stuck for long a stalled writer.
	since atomic.Int64

	pending chan *syncBatch
	exited  chan struct{}
}

// syncBatch is a committed batch waiting for the sync that makes it
// durable.
type syncBatch struct {
	upTo    int64 // started when it was handed over: every commit up to it had returned
	reqs    []*request
	answers []error       // what each caller is told once the batch is durable
	synced  chan struct{} // closed once the batch is answered, for flush; or nil
}

// newWALSyncer opens the WAL of the database at path, which Open's
// checkpoint created and guard recorded, makes it and its directory entry
// durable once (migrations commit without a sync too), and starts the
// sync goroutine.
func newWALSyncer(path string, guard *fileGuard) (*walSyncer, error) {
	wal, err := os.OpenFile(path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open the WAL to sync it: %w", err)
	}
	fail := func(err error) (*walSyncer, error) {
		wal.Close()
		return nil, err
	}
	if guard != nil && guard.wal != nil {
		fi, err := wal.Stat()
		if err != nil {
			return fail(err)
		}
		if !os.SameFile(fi, guard.wal) {
			return fail(fmt.Errorf("%s changed while it was opened", wal.Name()))
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fail(err)
	}
	if err := fdatasync(wal); err != nil {
		return fail(fmt.Errorf("sync the WAL: %w", err))
	}
	s := &walSyncer{wal: wal, advanced: make(chan struct{}), pending: make(chan *syncBatch), exited: make(chan struct{})}
	fn := fdatasync
	s.syncFn.Store(&fn)
	go s.run()
	return s, nil
}

// syncDir makes the directory entries in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// beginCommit is called by the writer right before each COMMIT, so that
// a reader that may see the commit waits for its sync.
func (s *walSyncer) beginCommit() {
	if s != nil {
		s.started.Add(1)
	}
}

// hand passes a committed batch to the sync goroutine; it blocks while a
// sync is in flight.
func (s *walSyncer) hand(reqs []*request, answers []error) {
	s.pending <- &syncBatch{upTo: s.started.Load(), reqs: reqs, answers: answers}
}

// flush waits until every commit begun so far is synced (or a sync
// failed). Only the writer goroutine calls it.
func (s *walSyncer) flush() {
	b := &syncBatch{upTo: s.started.Load(), synced: make(chan struct{})}
	s.pending <- b
	<-b.synced
}

// run syncs and answers the batches handed over until stop. A batch is
// handed over after its COMMIT returned, so the sync that follows covers
// its frames.
func (s *walSyncer) run() {
	defer close(s.exited)
	for b := range s.pending {
		err := s.failure()
		if err == nil {
			s.since.Store(time.Now().UnixNano())
			if serr := (*s.syncFn.Load())(s.wal); serr != nil {
				err = s.fail(serr)
			}
			s.since.Store(0)
		}
		if err == nil {
			s.durable.Store(b.upTo)
			s.wake()
		}
		for i, r := range b.reqs {
			answer := b.answers[i]
			if err != nil {
				answer = err
			}
			r.done <- answer
		}
		if b.synced != nil {
			close(b.synced)
		}
	}
}

// fail records that a sync failed. After a failed fdatasync the kernel
// may have dropped the WAL pages it could not write while SQLite and the
// readers take the commits as done, so no later sync can vouch for them:
// the store refuses every write and every read that may see one of them
// until it is opened again.
func (s *walSyncer) fail(cause error) error {
	err := fmt.Errorf("store: %w: syncing the WAL to disk failed (%w); the store refuses writes until personad is restarted", engine.ErrUnavailable, cause)
	if s.failed.CompareAndSwap(nil, &err) {
		s.wake()
	}
	return s.failure()
}

// failure returns the error a failed sync left, or nil; nil for a nil s.
func (s *walSyncer) failure() error {
	if s == nil {
		return nil
	}
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *walSyncer) wake() {
	s.mu.Lock()
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.mu.Unlock()
}

// await waits until every commit the writer had begun by now is durable,
// so that what a read saw before calling it can no longer vanish on power
// loss. A nil s (no pipeline) returns at once. Errors: ctx's error, or the
// failure of a sync (matching engine.ErrUnavailable) when that commit may
// be lost.
func (s *walSyncer) await(ctx context.Context) error {
	if s == nil {
		return nil
	}
	n := s.started.Load()
	if s.durable.Load() >= n {
		return nil
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		s.mu.Lock()
		ch := s.advanced
		s.mu.Unlock()
		if s.durable.Load() >= n {
			return nil
		}
		if err := s.failure(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("store: %w: waiting for the WAL sync: %w", engine.ErrUnavailable, ctx.Err())
		}
	}
}

// stop waits for the batches handed over to be synced and answered, then
// closes the WAL. Only the writer goroutine calls it, once, after its last
// hand.
func (s *walSyncer) stop() error {
	close(s.pending)
	<-s.exited
	return s.wal.Close()
}

// stalledFor returns how long the sync under way has run, 0 when none.
func (s *walSyncer) stalledFor() time.Duration {
	if s == nil {
		return 0
	}
	if since := s.since.Load(); since != 0 {
		return time.Since(time.Unix(0, since))
	}
	return 0
}
