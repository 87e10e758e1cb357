package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/personad/personad/engine"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors Open and OpenReadOnly return for files personad must not use.
var (
	// ErrNotPersonad: the file is not a personad database.
	ErrNotPersonad = errors.New("not a personad database")
	// ErrNewerSchema: a newer personad wrote the file.
	ErrNewerSchema = errors.New("database schema is newer than this personad")
	// ErrLocked: another process holds the database's write lock.
	ErrLocked = errors.New("database is locked by another process")
	// ErrCorrupt: the integrity check failed.
	ErrCorrupt = errors.New("database is corrupt")
)

// ErrForgetPending is what Close returns when the WAL may still hold
// bodies a redaction or Retain scrubbed away, because a reader of another
// process (a backup, Litestream) kept the last checkpoint from completing.
var ErrForgetPending = errors.New("the WAL still holds scrubbed-away data: a reader holds an old snapshot; the next open checkpoints again")

// code returns the primary SQLite result code of err, or 0.
func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// unavailable wraps a store failure so that callers can map it to "retry
// later": disk full, I/O errors, a lock held elsewhere, a closed store.
func unavailable(op string, err error) error {
	if errors.Is(err, engine.ErrUnavailable) {
		return err
	}
	hint := ""
	switch code(err) {
	case sqlite3.SQLITE_FULL:
		hint = "disk full: "
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		hint = "another process holds the write lock: "
	}
	return fmt.Errorf("store: %s: %w: %s%w", op, engine.ErrUnavailable, hint, err)
}

// openError explains why a file could not be opened, with a hint for the
// operator.
func openError(path string, err error) error {
	switch code(err) {
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("store: %s: %w (%v)", path, ErrNotPersonad, err)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("store: %s: %w (%v); is another personad serving it?", path, ErrLocked, err)
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("store: %s: %w (%v); restore it from a backup", path, ErrCorrupt, err)
	}
	return fmt.Errorf("store: open %s: %w: %w", path, engine.ErrUnavailable, err)
}

// isAlreadyStored says whether err is the events_unique_id trigger's
// (migrations/0011_encoded_bodies.sql): an event id stored already.
func isAlreadyStored(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT && strings.Contains(se.Error(), "event already stored")
}
