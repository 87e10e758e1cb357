package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

// SetMaxPageCount caps the database size, so that tests can see what a
// full disk does.
func SetMaxPageCount(db *DB, pages int) error {
	_, err := db.writer.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages))
	return err
}

// Batches returns how many batches the writer ran and how many updates
// they held.
func Batches(db *DB) (batches, updates int64) {
	return db.writer.batches.Load(), db.writer.updates.Load()
}

// WriterDSN is the data source name Open gives the writer connection of
// a database at path with default options.
func WriterDSN(path string) string {
	o, _ := Options{}.normalize()
	return writerDSN(path, o)
}

// Queued returns how many Updates wait for the writer, so that a test can
// tell when the ones it started are all queued for the next batch.
func Queued(db *DB) int { return len(db.writer.queue) }

// EvictProjections empties the writer's projection cache, as its bound
// does to the entries it evicts, so that the next event of any inquiry
// reads its projection back from the file.
func EvictProjections(db *DB) error {
	return db.writer.do(context.Background(), func(t *tx) error {
		t.cache.m.clear()
		return nil
	})
}

// OpenWithoutLock opens a writer on path without the lock file, as a tool
// that ignores it (or an older personad) could, so that tests can still
// pin what the writer does about another writer's commits.
func OpenWithoutLock(path string, opts Options) (*DB, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	return open(path, opts)
}

// Setting reads a settings row, 0 when there is none.
func Setting(tb testing.TB, db *DB, key string) int64 {
	tb.Helper()
	var v int64
	if err := db.read.QueryRow(`SELECT value FROM settings WHERE key = ?`, key).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		tb.Fatal(err)
	}
	return v
}
