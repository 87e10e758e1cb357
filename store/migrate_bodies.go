package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/personad/personad/internal/bodycodec"
)

// encodeExisting is the Go step of bodiesEncodedVersion: it copies every
// event of events_v10 into the new events table, in seq order, with its
// body encoded and its event_key, drops events_v10, and encodes the
// bodies of the conflicts and dead letters in place, a page of rows at a
// time so that a large file needs no more memory than a page.
func encodeExisting(ctx context.Context, sqlTx *sql.Tx) error {
	if err := copyEvents(ctx, sqlTx); err != nil {
		return err
	}
	if _, err := sqlTx.ExecContext(ctx, `DROP TABLE events_v10`); err != nil {
		return err
	}
	for _, table := range []string{"conflicts", "dead_letters"} {
		if err := encodeInPlace(ctx, sqlTx, table); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

func copyEvents(ctx context.Context, sqlTx *sql.Tx) error {
	const columns = `seq, event_id, name, object_type, object_id, related_inquiry_id, created_at, received_at,
		attempts_made, deliveries, outcome, source, sha256, chain, parts`
	insert, err := sqlTx.PrepareContext(ctx, `INSERT INTO events (event_key, body, `+columns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insert.Close()
	for after := int64(0); ; {
		rows, err := sqlTx.QueryContext(ctx, `SELECT `+columns+`, body FROM events_v10 WHERE seq > ? ORDER BY seq LIMIT 1000`, after)
		if err != nil {
			return err
		}
		var page [][]any
		for rows.Next() {
			var (
				seq, created, received, attempts, deliveries int64
				id, name, objType, objID, outcome, source    string
				related, parts                               sql.NullString
				sum, chain, body                             []byte
			)
			if err := rows.Scan(&seq, &id, &name, &objType, &objID, &related, &created, &received,
				&attempts, &deliveries, &outcome, &source, &sum, &chain, &parts, &body); err != nil {
				rows.Close()
				return err
			}
			page = append(page, []any{eventKey(id), bodycodec.Encode(nil, body), seq, id, name, objType, objID, related,
				created, received, attempts, deliveries, outcome, source, sum, chain, parts})
			after = seq
		}
		if err := closeRows(rows, "read events"); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, args := range page {
			if _, err := insert.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("copy event #%d: %w", args[2], err)
			}
		}
	}
}

// encodeInPlace encodes every body of table (of seq and body).
func encodeInPlace(ctx context.Context, sqlTx *sql.Tx, table string) error {
	for after := int64(0); ; {
		rows, err := sqlTx.QueryContext(ctx, `SELECT seq, body FROM `+table+` WHERE seq > ? ORDER BY seq LIMIT 1000`, after)
		if err != nil {
			return err
		}
		type row struct {
			seq  int64
			body []byte
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.body); err != nil {
				rows.Close()
				return err
			}
			page, after = append(page, row{r.seq, bodycodec.Encode(nil, r.body)}), r.seq
		}
		if err := closeRows(rows, "read bodies"); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if _, err := sqlTx.ExecContext(ctx, `UPDATE `+table+` SET body = ? WHERE seq = ?`, r.body, r.seq); err != nil {
				return err
			}
		}
	}
}
