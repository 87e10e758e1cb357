package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/personad/personad/engine"
)

// versionDeadLetterReplay is the schema version that keeps, for each dead
// letter, whether and as which event it was replayed
// (migrations/0006_dead_letter_replay.sql).
const versionDeadLetterReplay = 7

// deadLetterColumns are the columns scanDeadLetter reads, in its order.
const deadLetterColumns = `seq, received_at, reason, sha256, body, deliveries, replayed_at, replayed_event_id`

// DeadLetterPage implements engine.Reader. Errors: engine.ErrUnavailable.
func (db *DB) DeadLetterPage(ctx context.Context, before int64, limit int) ([]engine.DeadLetter, error) {
	if before == 0 {
		before = math.MaxInt64 // a range on the rowid, so that a deep page costs no scan
	}
	rows, err := db.query(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters
		WHERE seq < ? ORDER BY seq DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, unavailable("read dead letters", err)
	}
	defer rows.Close()
	var dead []engine.DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, unavailable("read dead letters", err)
		}
		dead = append(dead, d)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read dead letters", err)
	}
	return dead, nil
}

// GetDeadLetter implements engine.Reader. Errors: engine.ErrNotFound,
// engine.ErrUnavailable.
func (db *DB) GetDeadLetter(ctx context.Context, seq int64) (*engine.DeadLetter, error) {
	d, err := scanDeadLetter(db.queryRow(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE seq = ?`, seq))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("dead letter %d: %w", seq, engine.ErrNotFound)
	case err != nil:
		return nil, unavailable("read dead letter", err)
	}
	return &d, nil
}

func scanDeadLetter(row rowScanner) (engine.DeadLetter, error) {
	var (
		d        engine.DeadLetter
		at       int64
		sum      []byte
		replayed sql.NullInt64
		eventID  sql.NullString
	)
	if err := row.Scan(&d.Seq, &at, &d.Reason, &sum, &d.Body, &d.Deliveries, &replayed, &eventID); err != nil {
		return d, err
	}
	body, err := decodeBody(d.Body)
	if err != nil {
		return d, fmt.Errorf("%w (dead letter #%d)", err, d.Seq)
	}
	d.Body = body
	d.ReceivedAt = fromMillis(at)
	copy(d.SHA256[:], sum)
	if replayed.Valid {
		d.ReplayedAt = fromMillis(replayed.Int64)
	}
	d.ReplayedEventID = eventID.String
	return d, nil
}

// MarkDeadLetterReplayed implements engine.Tx.
func (t *tx) MarkDeadLetterReplayed(seq int64, at time.Time, eventID string) error {
	res, err := t.sql.Exec(`UPDATE dead_letters SET replayed_at = ?, replayed_event_id = ?
		WHERE seq = ? AND replayed_at IS NULL AND replayed_event_id IS NULL`, at.UnixMilli(), eventID, seq)
	if err != nil {
		return unavailable("mark dead letter replayed", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return unavailable("mark dead letter replayed", err)
	} else if n == 1 {
		return nil
	}
	var one int
	switch err := t.sql.QueryRow(`SELECT 1 FROM dead_letters WHERE seq = ?`, seq).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("dead letter %d: %w", seq, engine.ErrNotFound)
	case err != nil:
		return unavailable("find dead letter", err)
	}
	return fmt.Errorf("dead letter %d: %w", seq, engine.ErrAlreadyReplayed)
}
