package store

import (
	"context"
	"encoding/json"

	"github.com/personad/personad/engine"
)

// SetDrift implements engine.Tx.
func (t *tx) SetDrift(d *engine.Drift) error {
	if _, err := t.stmt(sSetDrift).Exec(d.InquiryID, string(d.Status), string(d.PersonaStatus), d.CheckedAt.UnixMilli()); err != nil {
		return unavailable("set drift", err)
	}
	return nil
}

// ClearDrift implements engine.Tx.
func (t *tx) ClearDrift(inquiryID string) error {
	if _, err := t.stmt(sClearDrift).Exec(inquiryID); err != nil {
		return unavailable("clear drift", err)
	}
	return nil
}

// Drifts implements engine.Reader, in one query whatever the number of
// ids (they go in as one JSON array). Errors: engine.ErrUnavailable.
func (db *DB) Drifts(ctx context.Context, ids []string) (map[string]engine.Drift, error) {
	out := map[string]engine.Drift{}
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := db.query(ctx, `SELECT inquiry_id, status, persona_status, checked_at FROM drifts
		WHERE inquiry_id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, unavailable("read drifts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			d               engine.Drift
			status, persona string
			at              int64
		)
		if err := rows.Scan(&d.InquiryID, &status, &persona, &at); err != nil {
			return nil, unavailable("read drifts", err)
		}
		d.Status, d.PersonaStatus, d.CheckedAt = engine.Status(status), engine.Status(persona), fromMillis(at)
		out[d.InquiryID] = d
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read drifts", err)
	}
	return out, nil
}
