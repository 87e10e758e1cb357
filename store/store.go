package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/personad/personad/engine"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options tunes a store. The zero value is the durable default.
type Options struct {
	// Synchronous is "full" (the default: an acknowledged event survives
	// power loss; the WAL sync of one batch overlaps the next, see the
	// package doc) or "normal" (no sync at commit: may lose the last
	// acknowledged events on power loss; a process crash loses nothing).
	Synchronous string
	// MaxBatch bounds how many Updates share one transaction; 0 means
	// DefaultMaxBatch. 1 commits every Update on its own.
	MaxBatch int
	// BusyTimeout is how long to wait for a write lock another process
	// holds; 0 means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// OnBatch, when set, is called by the writer after each transaction
	// with how many Updates it held (for a batch-size metric). It must
	// not block.
	OnBatch func(size int)
	// Policy is the decision policy Rebuild folds with; use the engine's.
	Policy engine.Policy
	// ForgetWithin bounds how long the WAL may still hold the old bodies
	// of a redacted inquiry after the redaction was acknowledged. Zero,
	// the strictest, checkpoints the WAL before acknowledging the batch
	// that redacted: a checkpoint per such batch, which stalls every
	// caller in it and behind it. A positive bound acknowledges at commit
	// (the database pages are already scrubbed then) and checkpoints when
	// the bound is reached, so one checkpoint serves every redaction in
	// that time. A reader that holds an old snapshot (a backup,
	// Litestream) delays a checkpoint: the one before acknowledging waits
	// for it up to BusyTimeout, and every other attempt gives up at once
	// rather than stall the writer; it is retried every 100 ms until it
	// completes. DB.ForgetOverdue says how late it is.
	ForgetWithin time.Duration
	// OnForgetOverdue, when set, is called by the writer once each time the
	// WAL still holds scrubbed-away bodies past ForgetWithin (with a zero
	// ForgetWithin: when the checkpoint before acknowledging could not
	// complete), and again only after a checkpoint completed and a later
	// scrub is overdue in turn. It must not block.
	OnForgetOverdue func()
	// MinFree is the free space on the database's file system below which
	// Health fails, in bytes: 0 means DefaultMinFree, a negative value
	// turns the check off. Writes go on below it while SQLite can.
	MinFree int64
	// OnFailed, when set, is called once, from whichever goroutine noticed,
	// when the database file at the path is no longer the one opened
	// (deleted, renamed or replaced): from then on every write fails with
	// an error matching ErrReplaced. It must not block.
	OnFailed func(err error)
}

// Defaults for Options.
const (
	DefaultMaxBatch    = 256
	DefaultBusyTimeout = 5 * time.Second
)

// DB is a personad database. It is safe for concurrent use.
type DB struct {
	path   string
	opts   Options
	read   *sql.DB  // read-only pool
	stmts  sync.Map // query text → *sql.Stmt prepared on read
	writer *writer  // nil when opened read-only

	// Owned by writers only (nil when read-only).
	lock      *writeLock
	guard     *fileGuard
	stopGuard chan struct{}
	guardWG   sync.WaitGroup

	closeOnce, lockOnce sync.Once

	healthMu sync.Mutex
	probe    *probe // the Health check under way, or nil
}

var _ engine.Store = (*DB)(nil)

// Open opens the database at path, creating it if it does not exist, and
// brings its schema up to date. It checks the file's integrity and takes
// the write lock once to make sure no other process holds it. It holds an
// OS lock on path+".lock" (holding this process's PID) until Close, so
// that one process at a time writes the file; OpenReadOnly does not take
// it. From then on it watches that the file at path stays the one opened
// (see ErrReplaced).
//
// Errors: ErrNotPersonad when the file is not a personad database,
// ErrNewerSchema when a newer personad wrote it, ErrLocked when another
// process holds the lock file (the error names its PID) or SQLite's write
// lock for longer than the busy timeout,
// ErrCorrupt when the integrity check fails, and an error matching
// engine.ErrUnavailable when the file cannot be opened at all.
func Open(path string, opts Options) (*DB, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	lock, err := acquireWriteLock(path)
	if err != nil {
		return nil, err
	}
	db, err := open(path, opts)
	if err != nil {
		lock.release()
		return nil, err
	}
	db.lock = lock
	return db, nil
}

func open(path string, opts Options) (*DB, error) {
	// With synchronous=FULL the writer syncs the WAL itself, beside the
	// next batch (walSyncer): SQLite commits as with NORMAL.
	wopts := opts
	wopts.Synchronous = "NORMAL"
	w, err := sql.Open("sqlite", writerDSN(path, wopts))
	if err != nil {
		return nil, openError(path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := prepareSchema(w, path, opts); err != nil {
		w.Close()
		return nil, err
	}
	// A crash right after a redaction, or a migration that scrubbed, may
	// have left scrubbed-away bodies in the WAL or in the database file's
	// pages: fold the WAL into the file and truncate it. A reader of
	// another process can keep this from completing; the writer retries
	// until it does.
	checkpointed, err := checkpointWAL(w, 0, opts.BusyTimeout)
	if err != nil {
		w.Close()
		return nil, openError(path, err)
	}
	r, err := openReader(path, opts.BusyTimeout)
	if err != nil {
		w.Close()
		return nil, err
	}
	// The identity to watch is taken once the WAL exists (the checkpoint
	// above opened it) and before the first write is acknowledged.
	guard, err := newFileGuard(path, opts.OnFailed)
	if err != nil {
		w.Close()
		r.Close()
		return nil, openError(path, err)
	}
	wr, err := newWriter(w, path, opts, !checkpointed, guard)
	if err != nil {
		w.Close()
		r.Close()
		return nil, openError(path, err)
	}
	db := &DB{path: path, opts: opts, read: r, writer: wr, guard: guard, stopGuard: make(chan struct{})}
	guard.watch(db.stopGuard, &db.guardWG)
	return db, nil
}

// OpenReadOnly opens an existing database for reading while another
// process may be serving it: no writer, no migrations, no integrity check.
// Update fails on the returned DB.
//
// Errors: ErrNotPersonad when the file does not exist or is not a personad
// database (an empty file included), ErrNewerSchema when a newer personad
// wrote it, and an error matching engine.ErrUnavailable when it cannot be
// read.
func OpenReadOnly(path string) (*DB, error) {
	r, err := openReader(path, DefaultBusyTimeout)
	if err != nil {
		return nil, err
	}
	if err := checkReadable(r, path); err != nil {
		r.Close()
		return nil, err
	}
	return &DB{path: path, read: r}, nil
}

// Close waits for queued updates to commit, checkpoints the WAL into the
// database file and closes every connection. Updates after Close fail with
// an error matching engine.ErrUnavailable. Close returns ErrForgetPending
// when a reader of another process kept that checkpoint from completing
// while the WAL still held bodies a redaction or Retain scrubbed away:
// everything is committed, and the next Open checkpoints again.
func (db *DB) Close() error {
	var errs []error
	if db.writer != nil {
		db.closeOnce.Do(func() {
			close(db.stopGuard)
			db.guardWG.Wait()
		})
		errs = append(errs, db.writer.close())
	}
	db.stmts.Range(func(_, s any) bool {
		errs = append(errs, s.(*sql.Stmt).Close())
		return true
	})
	errs = append(errs, db.read.Close())
	// Last, so that the next writer cannot start before this one is done.
	db.lockOnce.Do(func() { errs = append(errs, db.lock.release()) })
	return errors.Join(errs...)
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

func (o Options) normalize() (Options, error) {
	switch strings.ToLower(o.Synchronous) {
	case "", "full":
		o.Synchronous = "FULL"
	case "normal":
		o.Synchronous = "NORMAL"
	default:
		return o, fmt.Errorf("store: synchronous must be \"full\" or \"normal\", not %q", o.Synchronous)
	}
	if o.ForgetWithin < 0 {
		return o, fmt.Errorf("store: ForgetWithin %v is negative", o.ForgetWithin)
	}
	if o.MaxBatch < 0 {
		return o, fmt.Errorf("store: MaxBatch %d is negative", o.MaxBatch)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	return o, nil
}

// writerDSN configures the one read-write connection: WAL, the chosen
// synchronous level, IMMEDIATE transactions (so a write never fails half
// way with SQLITE_BUSY) and secure_delete, so scrubbed bytes are zeroed.
func writerDSN(path string, o Options) string {
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+o.Synchronous+")")
	q.Add("_pragma", "secure_delete(ON)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "cache_size(-32768)") // 32 MiB
	q.Add("_pragma", "temp_store(MEMORY)") // savepoint sub-journals stay off the disk
	return fileURI(path, q)
}

// openReader opens the read-only pool. mode=ro never creates the file.
func openReader(path string, busy time.Duration) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "query_only(ON)")
	r, err := sql.Open("sqlite", fileURI(path, q))
	if err != nil {
		return nil, openError(path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(context.Background()); err != nil {
		r.Close()
		return nil, openError(path, err)
	}
	return r, nil
}

// fileURI makes a file: URI; without it the driver drops the query.
func fileURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath(), RawQuery: q.Encode()}
	return u.String()
}

// errClosed is what Update returns after Close.
var errClosed = fmt.Errorf("%w: store is closed", engine.ErrUnavailable)
