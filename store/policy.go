package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/personad/personad/engine"
)

// settingAutoDecide is the settings key of the recorded decision policy.
const settingAutoDecide = "policy_auto_decide"

// StoredPolicy returns the decision policy recorded in the file (by the
// first serve, or the last rebuild that changed it); recorded is false
// when none is. Errors: an error matching engine.ErrUnavailable.
func (db *DB) StoredPolicy(ctx context.Context) (p engine.Policy, recorded bool, err error) {
	var v int64
	err = db.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, settingAutoDecide).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return engine.Policy{}, false, nil
	case err != nil:
		return engine.Policy{}, false, unavailable("read policy", err)
	}
	return engine.Policy{AutoDecide: v != 0}, true, nil
}

// RecordPolicy records p as the file's decision policy. Errors: an error
// matching engine.ErrUnavailable.
func (db *DB) RecordPolicy(ctx context.Context, p engine.Policy) error {
	if db.writer == nil {
		return fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	v := 0
	if p.AutoDecide {
		v = 1
	}
	return db.writer.do(ctx, func(t *tx) error {
		_, err := t.sql.Exec(`INSERT INTO settings (key, value) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, settingAutoDecide, v)
		if err != nil {
			return unavailable("record policy", err)
		}
		return nil
	})
}

// RebuildWith is Rebuild folding with p instead of Options.Policy.
func (db *DB) RebuildWith(ctx context.Context, p engine.Policy) (RebuildReport, error) {
	start := time.Now()
	if db.writer == nil {
		return RebuildReport{}, fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	var rep RebuildReport
	err := db.writer.do(ctx, func(t *tx) error {
		rep = RebuildReport{}
		return rebuild(t, p, start, &rep)
	})
	rep.Duration = time.Since(start)
	return rep, err
}
