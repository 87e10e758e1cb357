package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// checkpointInterval is the least time between two background
// checkpoints while the writer commits: at 2,000 events/s about 1,000
// frames of WAL (4 MB) are copied at a time, and a page many commits
// rewrote is copied once.
const checkpointInterval = 50 * time.Millisecond

// checkpointErrorRetry is how soon a background checkpoint that failed is
// tried again; the writer's own autocheckpoint (writerAutocheckpoint)
// covers the WAL meanwhile.
const checkpointErrorRetry = time.Second

// writerAutocheckpoint is the WAL size, in frames, past which the writer
// checkpoints itself after a commit, as SQLite does at 1,000 by default.
// With the background checkpointer it is a backstop, reached when the
// checkpointer falls behind or fails, and the only way the WAL restarts
// from its start under a steady load (see checkpointer).
const writerAutocheckpoint = 10_000

// backgroundCheckpoints turns the checkpointer on; tests turn it off to
// show what it does.
var backgroundCheckpoints = true

// checkpointer copies the WAL into the database file from a connection of
// its own (PRAGMA wal_checkpoint(PASSIVE)), beside the writer, so that no
// batch, and none of the deliveries queued behind it, waits while a
// checkpoint writes and syncs scattered pages of a large file: SQLite's
// autocheckpoint runs inside the COMMIT that crosses its threshold.
//
// A PASSIVE checkpoint takes no lock the writer needs and copies only
// frames no reader still needs. SQLite syncs the WAL before it copies a
// frame and the database file before it records the frames copied, so a
// page reaches the database file only from a WAL frame already on the
// disk (store/doc.go, "Checkpoints"). The writer's own checkpoints (the
// TRUNCATE ones that forget scrubbed bodies, and Close's) take mu, so
// they never find this one holding SQLite's checkpoint lock, which would
// fail them at once. After a failed WAL sync, or once the file was
// replaced, it checkpoints no more.
//
// The WAL restarts from its start only when the writer begins a
// transaction with every frame copied. Under a steady load the writer's
// next batch has usually appended frames before a checkpoint ends, so the
// WAL grows until the writer's autocheckpoint (writerAutocheckpoint)
// copies the last few frames itself; its next batch then restarts it.
type checkpointer struct {
	db      *sql.DB    // one connection, this checkpointer's
	mu      sync.Mutex // held while a checkpoint runs
	failure func() error
	kick    chan struct{} // a commit happened
	quit    chan struct{}
	exited  chan struct{}

	runs, errs atomic.Int64 // checkpoints run and failed, for tests
}

// newCheckpointer opens a connection of its own to the database at path
// and starts the checkpointer; failure says whether the writer refuses
// every write (a failed sync, a replaced file).
func newCheckpointer(path string, busy time.Duration, failure func() error) (*checkpointer, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	// NORMAL is enough: in WAL mode a checkpoint syncs the WAL first and
	// the database file before it records what it copied.
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "cache_size(-512)") // a checkpoint copies frames without the page cache
	db, err := sql.Open("sqlite", fileURI(path, q))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{db: db, failure: failure, kick: make(chan struct{}, 1),
		quit: make(chan struct{}), exited: make(chan struct{})}
	go c.loop()
	return c, nil
}

// committed tells the checkpointer that the writer committed. It never
// blocks. c may be nil.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// lock keeps background checkpoints from running until unlock, for a
// checkpoint of the writer's own. c may be nil.
func (c *checkpointer) lock() {
	if c != nil {
		c.mu.Lock()
	}
}

func (c *checkpointer) unlock() {
	if c != nil {
		c.mu.Unlock()
	}
}

// stop waits for a checkpoint under way and closes the connection. c may
// be nil.
func (c *checkpointer) stop() error {
	if c == nil {
		return nil
	}
	close(c.quit)
	<-c.exited
	return c.db.Close()
}

func (c *checkpointer) loop() {
	defer close(c.exited)
	wait := time.NewTimer(0)
	<-wait.C
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		if c.failure() != nil {
			return
		}
		pause := checkpointInterval
		if err := c.checkpoint(); err != nil {
			c.errs.Add(1)
			pause = checkpointErrorRetry
		}
		wait.Reset(pause)
		select {
		case <-wait.C:
		case <-c.quit:
			return
		}
	}
}

// checkpoint runs one PASSIVE checkpoint.
func (c *checkpointer) checkpoint() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs.Add(1)
	var blocked, frames, copied int
	return c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&blocked, &frames, &copied)
}
