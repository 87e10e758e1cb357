package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/personad/personad/engine"
)

// The read methods use the read-only pool: in WAL mode they see the last
// committed state and never wait for the writer's transactions. They do
// wait for its WAL sync when they may have seen a commit that is not
// durable yet (query): what a read returns never vanishes on power loss.

// GetInquiry implements engine.Reader. Errors: engine.ErrNotFound when no
// such inquiry is stored, engine.ErrUnavailable when the read failed.
func (db *DB) GetInquiry(ctx context.Context, id string) (*engine.Inquiry, error) {
	var doc []byte
	err := db.queryRow(ctx, `SELECT doc FROM inquiries WHERE id = ?`, id).Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("inquiry %q: %w", id, engine.ErrNotFound)
	case err != nil:
		return nil, unavailable("read inquiry", err)
	}
	return decodeInquiry(doc)
}

// Events implements engine.Reader: an inquiry's events in log order, none
// for an unknown inquiry. Errors: engine.ErrUnavailable.
func (db *DB) Events(ctx context.Context, inquiryID string) ([]engine.Record, error) {
	rows, err := db.query(ctx, writerSQL[sInquiryEvents], inquiryID)
	if err != nil {
		return nil, unavailable("read events", err)
	}
	return scanRecords(rows, false)
}

// relatedEventsSQL is RelatedEvents' query (events_by_related_inquiry).
const relatedEventsSQL = `SELECT ` + recordColumns + ` FROM events WHERE related_inquiry_id = ? ORDER BY seq`

// RelatedEvents implements engine.Reader: the events about other objects
// that belong to an inquiry, in log order. Errors: engine.ErrUnavailable.
func (db *DB) RelatedEvents(ctx context.Context, inquiryID string) ([]engine.Record, error) {
	rows, err := db.query(ctx, relatedEventsSQL, inquiryID)
	if err != nil {
		return nil, unavailable("read events", err)
	}
	return scanRecords(rows, false)
}

// Inquiries implements engine.Reader: newest updated first, or, by
// reference, account or template, newest created first (ties by id
// descending), at the millisecond precision cursors carry. Errors:
// engine.ErrInvalid for a bad query or cursor, engine.ErrUnavailable.
func (db *DB) Inquiries(ctx context.Context, q engine.Query) ([]*engine.Inquiry, string, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, "", err
	}
	query, args, err := listingSQL(q)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, "", unavailable("list inquiries", err)
	}
	defer rows.Close()
	page := make([]*engine.Inquiry, 0, q.Limit+1)
	for rows.Next() {
		var doc sql.RawBytes
		if err := rows.Scan(&doc); err != nil {
			return nil, "", unavailable("list inquiries", err)
		}
		inq, err := decodeInquiry(doc)
		if err != nil {
			return nil, "", err
		}
		page = append(page, inq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", unavailable("list inquiries", err)
	}
	if len(page) <= q.Limit {
		return page, "", nil
	}
	return page[:q.Limit], q.CursorAfter(page[q.Limit-1]), nil
}

// listingSQL is the query of a listing page (one row more than the limit,
// to tell whether another page follows). A listing by reference, account
// or template is served by that column's index, which holds its rows
// newest created first: every other filter is written +col so that the
// planner reads it off the rows that index finds instead of choosing the
// status or decision index and sorting (the terms mean the same).
func listingSQL(q engine.Query) (string, []any, error) {
	var where []string
	var args []any
	filter := func(col string, v any) {
		if len(where) > 0 && q.ByCreated() {
			col = "+" + col
		}
		where, args = append(where, col+" = ?"), append(args, v)
	}
	for _, key := range []struct{ col, v string }{
		{"reference_id", q.ReferenceID}, {"account_id", q.AccountID}, {"template_id", q.TemplateID},
	} {
		if key.v != "" {
			filter(key.col, key.v)
		}
	}
	if q.Status != "" {
		filter("status", string(q.Status))
	}
	if q.Decision != "" {
		filter("decision", string(q.Decision))
	}
	if q.Redacted != nil {
		filter("redacted", *q.Redacted)
	}
	at := "updated_at"
	if q.ByCreated() {
		at = "created_at"
	}
	if q.Cursor != "" {
		c, err := engine.DecodeCursor(q.Cursor)
		if err != nil {
			return "", nil, err
		}
		ms := c.At.UnixMilli()
		where = append(where, "("+at+" < ? OR ("+at+" = ? AND id < ?))")
		args = append(args, ms, ms, c.ID)
	}
	query := "SELECT doc FROM inquiries"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + at + " DESC, id DESC LIMIT ?"
	return query, append(args, q.Limit+1), nil
}

// Changes implements engine.Reader: at most limit changes with Seq >
// after, in Seq order. Errors: engine.ErrUnavailable.
func (db *DB) Changes(ctx context.Context, after int64, limit int) ([]engine.Change, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.query(ctx, `SELECT seq, inquiry_id, event_id, from_status, to_status,
		decision, redacted, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, unavailable("read changes", err)
	}
	defer rows.Close()
	var changes []engine.Change
	for rows.Next() {
		var (
			c                  engine.Change
			from, to, decision sql.NullString
			at                 int64
		)
		if err := rows.Scan(&c.Seq, &c.InquiryID, &c.EventID, &from, &to, &decision, &c.Redacted, &at); err != nil {
			return nil, unavailable("read changes", err)
		}
		c.FromStatus, c.ToStatus, c.Decision = engine.Status(from.String), engine.Status(to.String), engine.Status(decision.String)
		c.At = fromMillis(at)
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read changes", err)
	}
	return changes, nil
}

// DeadLetters returns the latest limit dead letters, newest first, for an
// operator to inspect. Errors: engine.ErrInvalid for a limit outside
// 1..engine.MaxLimit, engine.ErrUnavailable.
func (db *DB) DeadLetters(ctx context.Context, limit int) ([]engine.DeadLetter, error) {
	if limit < 1 || limit > engine.MaxLimit {
		return nil, fmt.Errorf("%w: limit must be between 1 and %d", engine.ErrInvalid, engine.MaxLimit)
	}
	return db.DeadLetterPage(ctx, 0, limit)
}

// query runs a read statement prepared once per query text on the read
// pool (parsing the SQL again took a third of GET /v1/inquiries/:id), and
// is the one place every read of the store passes: once the statement's
// snapshot is taken it waits, when the writer has begun a commit its WAL
// sync has not covered yet, for that sync (walSyncer.await), so that no
// reader is told of a change before it is durable.
//
// The driver steps a statement once before QueryContext returns (test
// TestQuerySnapshotIsTaken pins it), which begins its read transaction:
// every row the returned Rows yield comes from that snapshot, so a commit
// not begun by the time await reads its counter is not among them.
func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := db.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	if err := db.awaitDurable(ctx); err != nil {
		rows.Close()
		return nil, err
	}
	return rows, nil
}

// awaitDurable waits until every commit begun by now is durable (nothing
// to wait for without a writer, or with synchronous=normal).
func (db *DB) awaitDurable(ctx context.Context) error {
	if db.writer == nil {
		return nil
	}
	return db.writer.syncer.await(ctx)
}

// queryRow is query for one row; errors surface in Scan, sql.ErrNoRows
// when there is none.
func (db *DB) queryRow(ctx context.Context, q string, args ...any) rowScanner {
	rows, err := db.query(ctx, q, args...)
	return firstRow{rows, err}
}

// firstRow scans the first row of rows, as *sql.Row does.
type firstRow struct {
	rows *sql.Rows
	err  error
}

func (r firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

func (db *DB) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := db.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.read.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

type rowScanner interface{ Scan(dest ...any) error }

// Conflicts returns the latest limit conflicting bodies (engine.Conflict),
// newest first, for an operator to inspect. Errors: engine.ErrInvalid for
// a limit outside 1..engine.MaxLimit, engine.ErrUnavailable.
func (db *DB) Conflicts(ctx context.Context, limit int) ([]engine.Conflict, error) {
	if limit < 1 || limit > engine.MaxLimit {
		return nil, fmt.Errorf("%w: limit must be between 1 and %d", engine.ErrInvalid, engine.MaxLimit)
	}
	rows, err := db.query(ctx, `SELECT seq, event_id, object_id, body_object_id, received_at,
		deliveries, sha256, body FROM conflicts ORDER BY seq DESC LIMIT ?`, limit)
	if err != nil {
		return nil, unavailable("read conflicts", err)
	}
	defer rows.Close()
	var out []engine.Conflict
	for rows.Next() {
		var (
			c   engine.Conflict
			at  int64
			sum []byte
		)
		if err := rows.Scan(&c.Seq, &c.EventID, &c.ObjectID, &c.BodyObjectID, &at, &c.Deliveries, &sum, &c.Body); err != nil {
			return nil, unavailable("read conflicts", err)
		}
		c.ReceivedAt = fromMillis(at)
		copy(c.SHA256[:], sum)
		if c.Body, err = decodeBody(c.Body); err != nil {
			return nil, fmt.Errorf("%w (conflict #%d)", err, c.Seq)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read conflicts", err)
	}
	return out, nil
}
