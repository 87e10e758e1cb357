package store

import (
	"context"
	"fmt"
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
		clear(t.cache.m)
		return nil
	})
}
