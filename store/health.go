package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personad/personad/engine"
	"modernc.org/sqlite"
)

// ErrReplaced: the database file (or its WAL) at the path the store opened
// is no longer the file it opened: it was deleted, renamed or replaced
// (a backup restored over it, say). Writes would go to a file nobody will
// open again, so the store refuses them until personad is restarted.
var ErrReplaced = errors.New("the database file was replaced or deleted while open")

// DefaultMinFree is the free space below which Health fails when
// Options.MinFree is 0.
const DefaultMinFree = 64 << 20

// Health reasons, the HealthError.Reason values.
const (
	HealthClosed      = "store_closed"      // closed, or opened read-only
	HealthReplaced    = "database_replaced" // ErrReplaced
	HealthDiskLow     = "disk_low"          // less free space than Options.MinFree
	HealthWriteFailed = "write_failed"      // a test write did not commit
	HealthStalled     = "writer_stalled"    // the writer did not answer in time
)

// HealthError is why Health failed: Reason is one of the Health* values,
// Message says it for an operator without paths or internals, and Err,
// when set, is the underlying error.
type HealthError struct {
	Reason  string
	Message string
	Err     error
}

func (e *HealthError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *HealthError) Unwrap() error { return e.Err }

// HealthReason returns Reason and Message, for an HTTP health check.
func (e *HealthError) HealthReason() (code, message string) { return e.Reason, e.Message }

// Health-check timing.
const (
	// healthWrite bounds the test write, so that Health answers within a
	// second when the writer is stuck.
	healthWrite = 750 * time.Millisecond
	// stalledAfter is how long one batch or checkpoint may run before
	// Health calls the writer stalled without queueing behind it.
	stalledAfter = healthWrite
	// guardEvery is how often, when idle, the store checks that its file
	// is still the one at its path.
	guardEvery = time.Second
)

// settingHealthProbe is the settings key the test write of Health sets.
const settingHealthProbe = "health_probe"

// Health reports whether a write can succeed now: the file at the path is
// the one opened, its file system has at least Options.MinFree bytes free,
// the writer is not stuck in a batch, and a real write (a settings row)
// commits within 750 ms. Concurrent calls share one check, so that a
// stalled disk cannot pile them up; ctx bounds the wait for it.
//
// Errors: a *HealthError (matching engine.ErrUnavailable too).
func (db *DB) Health(ctx context.Context) error {
	if db.writer == nil {
		return &HealthError{Reason: HealthClosed, Message: "the database was opened read-only", Err: engine.ErrUnavailable}
	}
	db.healthMu.Lock()
	p := db.probe
	if p == nil {
		p = &probe{done: make(chan struct{})}
		db.probe = p
		go func() {
			p.err = db.checkHealth()
			db.healthMu.Lock()
			db.probe = nil
			db.healthMu.Unlock()
			close(p.done)
		}()
	}
	db.healthMu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return &HealthError{Reason: HealthStalled, Message: "the health check did not finish in time: the disk may not be answering", Err: fmt.Errorf("%w: %w", engine.ErrUnavailable, ctx.Err())}
	}
}

// probe is one Health check that concurrent callers share.
type probe struct {
	done chan struct{}
	err  error
}

func (db *DB) checkHealth() error {
	w := db.writer
	if w.isClosed() {
		return &HealthError{Reason: HealthClosed, Message: "the store is closed", Err: errClosed}
	}
	if err := db.guard.check(); err != nil {
		if errors.Is(err, ErrReplaced) {
			return &HealthError{Reason: HealthReplaced, Message: ErrReplaced.Error() + "; restart personad", Err: err}
		}
		return &HealthError{Reason: HealthWriteFailed, Message: "the database file cannot be checked", Err: err}
	}
	if db.opts.MinFree > 0 {
		free, ok, err := freeBytes(filepath.Dir(db.path))
		if err != nil {
			return &HealthError{Reason: HealthWriteFailed, Message: "the free space of the database's file system cannot be read", Err: unavailable("statfs", err)}
		}
		if ok && free < uint64(db.opts.MinFree) {
			return &HealthError{Reason: HealthDiskLow, Err: engine.ErrUnavailable,
				Message: fmt.Sprintf("%s free on the database's file system, below the minimum of %s", mib(int64(free)), mib(db.opts.MinFree))}
		}
	}
	if err := w.syncer.failure(); err != nil {
		return &HealthError{Reason: HealthWriteFailed, Message: "syncing the WAL to disk failed; restart personad", Err: err}
	}
	if since := w.busySince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d > stalledAfter {
			return &HealthError{Reason: HealthStalled, Err: engine.ErrUnavailable,
				Message: fmt.Sprintf("the writer has been in one commit for %v: the disk may not be answering", d.Round(time.Millisecond))}
		}
	}
	if d := w.syncer.stalledFor(); d > stalledAfter {
		return &HealthError{Reason: HealthStalled, Err: engine.ErrUnavailable,
			Message: fmt.Sprintf("the writer has been syncing the WAL for %v: the disk may not be answering", d.Round(time.Millisecond))}
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthWrite)
	defer cancel()
	err := w.do(ctx, func(t *tx) error {
		_, err := t.sql.Exec(`INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, settingHealthProbe, time.Now().UnixMilli())
		if err != nil {
			return unavailable("health probe", err)
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrReplaced):
		return &HealthError{Reason: HealthReplaced, Message: ErrReplaced.Error() + "; restart personad", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &HealthError{Reason: HealthStalled, Message: fmt.Sprintf("a test write did not commit within %v: the disk may not be answering", healthWrite), Err: unavailable("health probe", err)}
	}
	msg := "a test write failed"
	if c := code(err); c != 0 {
		msg += ": " + sqlite.ErrorCodeString[c] // SQLite's name for the failure, no paths
	}
	return &HealthError{Reason: HealthWriteFailed, Message: msg, Err: err}
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// fileGuard notices when the database at path is no longer the file the
// store opened. From then on the store refuses every write.
type fileGuard struct {
	path     string
	db, wal  os.FileInfo // as opened; wal nil when there was none
	failed   atomic.Pointer[error]
	onFailed func(error)
}

// newFileGuard records the identity of the database and WAL at path.
func newFileGuard(path string, onFailed func(error)) (*fileGuard, error) {
	g := &fileGuard{path: path, onFailed: onFailed}
	var err error
	if g.db, err = os.Stat(path); err != nil {
		return nil, err
	}
	if g.wal, err = os.Stat(path + "-wal"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return g, nil
}

// failure returns the error the store failed with, or nil.
func (g *fileGuard) failure() error {
	if g == nil {
		return nil
	}
	if p := g.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// check compares the files at the path with the ones opened. It returns
// the store's failure (matching ErrReplaced and engine.ErrUnavailable) or,
// when the file cannot be looked at, an error matching only
// engine.ErrUnavailable.
func (g *fileGuard) check() error {
	if g == nil {
		return nil
	}
	if err := g.failure(); err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		was  os.FileInfo
	}{{g.path, g.db}, {g.path + "-wal", g.wal}} {
		if f.was == nil {
			continue
		}
		now, err := os.Stat(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return g.fail(fmt.Sprintf("%s was deleted or renamed", f.path))
		case err != nil:
			return unavailable("check the database file", err)
		case !os.SameFile(now, f.was):
			return g.fail(fmt.Sprintf("%s is another file now", f.path))
		}
	}
	return nil
}

// fail records the failure once and reports it to onFailed.
func (g *fileGuard) fail(why string) error {
	err := fmt.Errorf("store: %w: %w (%s); writes are refused until personad is restarted", engine.ErrUnavailable, ErrReplaced, why)
	if g.failed.CompareAndSwap(nil, &err) {
		if g.onFailed != nil {
			g.onFailed(err)
		}
		return err
	}
	return g.failure()
}

// watch checks the files every guardEvery until stop is closed, so that a
// replaced database is noticed (and logged) with no delivery coming in.
func (g *fileGuard) watch(stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		tick := time.NewTicker(guardEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if g.check() != nil && g.failure() != nil {
					return // failed for good: nothing more to notice
				}
			}
		}
	})
}
