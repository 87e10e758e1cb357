package store

import (
	"context"
	"database/sql"
	"errors"
)

// State returns the value SetState saved under key; found is false when
// none was. It reads a committed snapshot, so it sees a SetState that
// returned. Errors: an error matching engine.ErrUnavailable.
func (db *DB) State(ctx context.Context, key string) (value string, found bool, err error) {
	err = db.queryRow(ctx, `SELECT value FROM state WHERE key = ?`, key).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, unavailable("read state", err)
	}
	return value, true, nil
}

// SetState saves value under key, replacing what was there, durably
// before it returns. Errors: an error matching engine.ErrUnavailable (and
// one for a database opened read-only).
func (db *DB) SetState(ctx context.Context, key, value string) error {
	return db.notifyUpdate(ctx, "save state",
		`INSERT INTO state (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
}
