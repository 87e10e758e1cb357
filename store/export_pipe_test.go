package store

import (
	"context"
	"database/sql"
	"os"
)

// SetWALSync calls sync before each fdatasync of the WAL after a commit,
// so that a test can hold a sync in flight, or fail it (sync's error is
// the sync's).
func SetWALSync(db *DB, sync func() error) {
	f := func(wal *os.File) error {
		if err := sync(); err != nil {
			return err
		}
		return fdatasync(wal)
	}
	db.writer.syncer.syncFn.Store(&f)
}

// Commits returns how many COMMITs the writer began.
func Commits(db *DB) int64 { return db.writer.syncer.started.Load() }

// Closing reports whether Close has begun on db's writer.
func Closing(db *DB) bool { return db.writer.isClosed() }

// ReadsWaiting returns how many reads wait for a WAL sync.
func ReadsWaiting(db *DB) int { return int(db.writer.syncer.waiting.Load()) }

// Query runs q on the read pool the way every read method does.
func Query(ctx context.Context, db *DB, q string) (*sql.Rows, error) { return db.query(ctx, q) }
