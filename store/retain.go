package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/personad/personad/engine"
)

// RetainReport says what Retain did.
type RetainReport struct {
	EventsScanned       int           // events received before the cutoff that this run looked at
	EventsScrubbed      int           // of those, the bodies rewritten (the others were scrubbed already)
	DeadLettersScanned  int           // dead letters received before the cutoff that this run looked at
	DeadLettersScrubbed int           // of those, the bodies rewritten
	ConflictsScanned    int           // conflicting bodies received before the cutoff that this run looked at
	ConflictsScrubbed   int           // of those, the bodies rewritten
	Duration            time.Duration // wall time, including the waits for the writer
}

// retainChunk bounds the rows one writer update of Retain scrubs, so that
// ingestion waits for at most one chunk at a time.
const retainChunk = 256

// retainTable is one table whose old bodies Retain scrubs.
type retainTable struct {
	name  string // of the table
	mark  string // settings key holding the highest seq Retain processed
	what  string // a row, in errors
	scrub func([]byte) ([]byte, error)
}

var retainTables = [...]retainTable{
	{"events", "retained_events_seq", "event", engine.ScrubForRetention},
	{"dead_letters", "retained_dead_letters_seq", "dead letter", engine.ScrubDeadLetter},
	// A conflict's body parsed as an event, as a stored event's did.
	{"conflicts", "retained_conflicts_seq", "conflict", engine.ScrubForRetention},
}

// Retain scrubs the personal data out of every event body received before
// cutoff, and every conflicting body (engine.Conflict), with
// engine.ScrubForRetention, and out of every dead letter received before
// it, with engine.ScrubDeadLetter. What an event keeps (its
// ids, name, statuses, timestamps, relationship ids, and an inquiry's
// reference-id and tags) is what a fold reads, so every projection stays as
// it is, and so does a later Rebuild; every other column (SHA-256 of the
// body as received, outcome, hash chain) is left alone. The old bytes are
// zeroed in the database pages and leave the WAL within
// Options.ForgetWithin, as a redaction's do.
//
// Retain works in chunks of at most 256 rows, each its own writer update,
// so that ingestion never waits for long. A mark per table in settings
// records the highest seq processed, so a run starts where the last one
// stopped and a periodic run reads only what arrived since. A run goes in
// seq order and stops at the first row received at or after cutoff.
// received_at follows seq closely but not exactly (concurrent deliveries
// commit in any order, the clock may step back); a row received before
// cutoff that comes after a newer one in the log is scrubbed by a later
// run, once the cutoff passes the newer one too: never skipped, at worst
// late by how far the two were out of order.
//
// Errors: ctx's error when ctx ended between chunks; an error matching
// engine.ErrUnavailable when the store failed or was opened read-only; an
// error naming the row's seq when a stored body cannot be scrubbed. Every
// stored event body parsed once, so the last is a bug: the chunks before
// it, and the rows of its chunk before it, are kept, and every later run
// stops at that row again until it is fixed, while the other table is
// still retained. The report counts what was committed, also on error.
func (db *DB) Retain(ctx context.Context, cutoff time.Time) (RetainReport, error) {
	start := time.Now()
	var rep RetainReport
	if db.writer == nil {
		return rep, fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	before := cutoff.UnixMilli()
	var bug error // a body that cannot be scrubbed stops its table, not the other
	for _, table := range retainTables {
		for {
			var c retained
			err := db.writer.do(ctx, func(t *tx) error {
				c = retained{}
				return retainChunkOf(t, table, before, &c)
			})
			if err != nil {
				rep.Duration = time.Since(start)
				return rep, err
			}
			rep.add(table, c)
			if c.err != nil {
				bug = c.err
			}
			if c.done {
				break
			}
		}
	}
	rep.Duration = time.Since(start)
	return rep, bug
}

// retained is what one chunk did.
type retained struct {
	scanned, scrubbed int
	done              bool  // no row of the table is left to look at before the cutoff
	err               error // the body that could not be scrubbed, after the rows kept
}

func (r *RetainReport) add(table retainTable, c retained) {
	switch table.name {
	case "events":
		r.EventsScanned += c.scanned
		r.EventsScrubbed += c.scrubbed
	case "conflicts":
		r.ConflictsScanned += c.scanned
		r.ConflictsScrubbed += c.scrubbed
	default:
		r.DeadLettersScanned += c.scanned
		r.DeadLettersScrubbed += c.scrubbed
	}
}

// retainChunkOf scrubs the next rows of table after its mark that were
// received before the cutoff (unix ms), at most retainChunk of them, and
// moves the mark past them.
func retainChunkOf(t *tx, table retainTable, before int64, c *retained) error {
	var mark int64
	err := t.sql.QueryRow(`SELECT value FROM settings WHERE key = ?`, table.mark).Scan(&mark)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return unavailable("retain: read mark", err)
	}
	type row struct {
		seq, receivedAt int64
		body            []byte
	}
	// Read the chunk before writing to the table it comes from.
	rows, err := t.sql.Query(`SELECT seq, received_at, body FROM `+table.name+`
		WHERE seq > ? ORDER BY seq LIMIT ?`, mark, retainChunk)
	if err != nil {
		return unavailable("retain: read bodies", err)
	}
	var chunk []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.receivedAt, &r.body); err != nil {
			rows.Close()
			return unavailable("retain: read bodies", err)
		}
		chunk = append(chunk, r)
	}
	if err := closeRows(rows, "retain: read bodies"); err != nil {
		return err
	}
	c.done = len(chunk) < retainChunk
	last := mark
	for _, r := range chunk {
		if r.receivedAt >= before {
			c.done = true
			break
		}
		old, err := t.decodeBody(r.body)
		if err != nil {
			return fmt.Errorf("store: retain: %s #%d: %w", table.what, r.seq, err)
		}
		body, err := table.scrub(old)
		if err != nil {
			c.done = true
			c.err = fmt.Errorf("store: retain: the stored body of %s #%d cannot be scrubbed, which is a bug: %w",
				table.what, r.seq, err)
			break
		}
		c.scanned++
		last = r.seq
		if bytes.Equal(body, old) {
			continue
		}
		if _, err := t.sql.Exec(`UPDATE `+table.name+` SET body = ? WHERE seq = ?`, t.encodeBody(body), r.seq); err != nil {
			return unavailable("retain: replace body", err)
		}
		c.scrubbed++
		t.bodiesRewritten()
	}
	if last == mark {
		return nil
	}
	if _, err := t.sql.Exec(`INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, table.mark, last); err != nil {
		return unavailable("retain: save mark", err)
	}
	return nil
}
