package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/personad/personad/engine"
)

// schemaNotify is the schema version that adds notify_endpoints.
const schemaNotify = 8

// NotifyEndpoint is the state of one URL the change feed is pushed to
// (serve -notify-url), as the database keeps it.
type NotifyEndpoint struct {
	URL string
	// Cursor is the seq of the last change the endpoint acknowledged with
	// a 2xx, or the feed's head when it was first configured: the changes
	// after it are still to be sent.
	Cursor       int64
	AddedAt      time.Time
	DeliveredAt  time.Time // the last 2xx; zero before the first
	FailingSince time.Time // when the change being sent first failed; zero while deliveries succeed
	LastError    string    // of the last failed attempt
	ParkedAt     time.Time // zero unless personad gave up on the endpoint
	ParkedReason string
}

// Parked reports whether personad gave up on the endpoint: it is sent
// nothing until ResumeNotifyEndpoint.
func (e NotifyEndpoint) Parked() bool { return !e.ParkedAt.IsZero() }

// ErrNoEndpoint is what ResumeNotifyEndpoint returns for a URL the
// database has no notify endpoint for.
var ErrNoEndpoint = errors.New("no such notify endpoint")

const notifyColumns = `url, cursor, added_at, delivered_at, failing_since, last_error, parked_at, parked_reason`

func scanEndpoint(r rowScanner) (NotifyEndpoint, error) {
	var (
		e                          NotifyEndpoint
		added                      int64
		delivered, failing, parked sql.NullInt64
		lastErr, reason            sql.NullString
	)
	if err := r.Scan(&e.URL, &e.Cursor, &added, &delivered, &failing, &lastErr, &parked, &reason); err != nil {
		return NotifyEndpoint{}, err
	}
	e.AddedAt = fromMillis(added)
	e.DeliveredAt, e.FailingSince, e.ParkedAt = nullMillis(delivered), nullMillis(failing), nullMillis(parked)
	e.LastError, e.ParkedReason = lastErr.String, reason.String
	return e, nil
}

func nullMillis(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMillis(n.Int64)
}

// ChangesHead returns the seq of the latest change in the feed, 0 when
// it is empty. Errors: engine.ErrUnavailable.
func (db *DB) ChangesHead(ctx context.Context) (int64, error) {
	var head int64
	if err := db.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&head); err != nil {
		return 0, unavailable("read the change feed's head", err)
	}
	return head, nil
}

// NotifyEndpoints returns every notify endpoint the database knows, by
// URL. Errors: engine.ErrUnavailable.
func (db *DB) NotifyEndpoints(ctx context.Context) ([]NotifyEndpoint, error) {
	rows, err := db.query(ctx, `SELECT `+notifyColumns+` FROM notify_endpoints ORDER BY url`)
	if err != nil {
		return nil, unavailable("read notify endpoints", err)
	}
	defer rows.Close()
	var out []NotifyEndpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, unavailable("read notify endpoints", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read notify endpoints", err)
	}
	return out, nil
}

// NotifyEndpoint returns one endpoint's state; found is false when the
// database has none for url. Errors: engine.ErrUnavailable.
func (db *DB) NotifyEndpoint(ctx context.Context, url string) (e NotifyEndpoint, found bool, err error) {
	e, err = scanEndpoint(db.queryRow(ctx, `SELECT `+notifyColumns+` FROM notify_endpoints WHERE url = ?`, url))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return NotifyEndpoint{}, false, nil
	case err != nil:
		return NotifyEndpoint{}, false, unavailable("read notify endpoint", err)
	}
	return e, true, nil
}

// RegisterNotifyEndpoint returns the state of the endpoint url, adding it
// first when the database has none: from the feed's head at that moment
// (nothing that happened before is sent), or, with fromStart, from the
// feed's first change. Errors: engine.ErrUnavailable.
func (db *DB) RegisterNotifyEndpoint(ctx context.Context, url string, fromStart bool, now time.Time) (NotifyEndpoint, error) {
	if err := db.writable(); err != nil {
		return NotifyEndpoint{}, err
	}
	start := `(SELECT COALESCE(MAX(seq), 0) FROM changes)`
	if fromStart {
		start = `0`
	}
	var e NotifyEndpoint
	err := db.writer.do(ctx, func(t *tx) error {
		if _, err := t.sql.Exec(`INSERT INTO notify_endpoints (url, cursor, added_at) VALUES (?, `+start+`, ?)
			ON CONFLICT (url) DO NOTHING`, url, now.UnixMilli()); err != nil {
			return unavailable("add notify endpoint", err)
		}
		var err error
		if e, err = scanEndpoint(t.sql.QueryRow(`SELECT `+notifyColumns+` FROM notify_endpoints WHERE url = ?`, url)); err != nil {
			return unavailable("add notify endpoint", err)
		}
		return nil
	})
	return e, err
}

// AdvanceNotifyCursor records that the endpoint url acknowledged every
// change up to seq, at (a cursor never moves back). Errors:
// engine.ErrUnavailable.
func (db *DB) AdvanceNotifyCursor(ctx context.Context, url string, seq int64, at time.Time) error {
	return db.notifyUpdate(ctx, "advance notify cursor",
		`UPDATE notify_endpoints SET cursor = ?2, delivered_at = ?3 WHERE url = ?1 AND cursor < ?2`, url, seq, at.UnixMilli())
}

// NotifyFailing records a failed attempt at the endpoint url: since is
// when the change being sent first failed (kept when one is recorded
// already), lastErr what went wrong. Errors: engine.ErrUnavailable.
func (db *DB) NotifyFailing(ctx context.Context, url string, since time.Time, lastErr string) error {
	return db.notifyUpdate(ctx, "record notify failure",
		`UPDATE notify_endpoints SET failing_since = COALESCE(failing_since, ?2), last_error = ?3 WHERE url = ?1`,
		url, since.UnixMilli(), lastErr)
}

// NotifyRecovered clears the failure the endpoint url had: an attempt
// succeeded. Errors: engine.ErrUnavailable.
func (db *DB) NotifyRecovered(ctx context.Context, url string) error {
	return db.notifyUpdate(ctx, "record notify recovery",
		`UPDATE notify_endpoints SET failing_since = NULL, last_error = NULL WHERE url = ?1`, url)
}

// ParkNotifyEndpoint records that personad gave up on the endpoint url
// at at, for reason, with every change up to cursor acknowledged.
// Errors: engine.ErrUnavailable.
func (db *DB) ParkNotifyEndpoint(ctx context.Context, url string, cursor int64, at time.Time, reason string) error {
	return db.notifyUpdate(ctx, "park notify endpoint",
		`UPDATE notify_endpoints SET cursor = max(cursor, ?2), parked_at = ?3, parked_reason = ?4 WHERE url = ?1`,
		url, cursor, at.UnixMilli(), reason)
}

func (db *DB) notifyUpdate(ctx context.Context, op, query string, args ...any) error {
	if err := db.writable(); err != nil {
		return err
	}
	return db.writer.do(ctx, func(t *tx) error {
		if _, err := t.sql.Exec(query, args...); err != nil {
			return unavailable(op, err)
		}
		return nil
	})
}

func (db *DB) writable() error {
	if db.writer == nil {
		return fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	return nil
}

// ResumeNotifyEndpoint clears the parked and failing state of the
// endpoint url in the database at path, so that it is sent the changes
// after its cursor again: a running serve notices within seconds, else
// the next one does. It writes that one row through a connection of its
// own, beside the serving process's writer (SQLite serializes the two;
// the row is one the writer never caches), so it works whether or not a
// serve holds the file. Errors: ErrNoEndpoint, ErrNotPersonad, an older or
// newer schema, engine.ErrUnavailable.
func ResumeNotifyEndpoint(ctx context.Context, path, url string) (NotifyEndpoint, error) {
	r, err := openReader(path, DefaultBusyTimeout)
	if err != nil {
		return NotifyEndpoint{}, err
	}
	err = checkReadable(r, path)
	r.Close()
	if err != nil {
		return NotifyEndpoint{}, err
	}
	o, _ := Options{}.normalize()
	w, err := sql.Open("sqlite", writerDSN(path, o))
	if err != nil {
		return NotifyEndpoint{}, openError(path, err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	res, err := w.ExecContext(ctx, `UPDATE notify_endpoints SET parked_at = NULL, parked_reason = NULL,
		failing_since = NULL, last_error = NULL WHERE url = ?`, url)
	if err != nil {
		return NotifyEndpoint{}, unavailable("resume notify endpoint", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return NotifyEndpoint{}, fmt.Errorf("%w: %s", ErrNoEndpoint, url)
	}
	e, err := scanEndpoint(w.QueryRowContext(ctx, `SELECT `+notifyColumns+` FROM notify_endpoints WHERE url = ?`, url))
	if err != nil {
		return NotifyEndpoint{}, unavailable("resume notify endpoint", err)
	}
	return e, nil
}
