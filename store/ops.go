package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/personad/personad/engine"
)

// RebuildReport says what Rebuild did.
type RebuildReport struct {
	Inquiries int           // projections derived from the log
	Events    int           // inquiry events folded
	Changed   []string      // ids whose stored projection differed and was replaced, sorted
	Changes   int           // change-feed rows appended for changed status, decision or redaction
	Duration  time.Duration // wall time, including the wait for the writer
}

// Rebuild re-derives every inquiry projection from the event log with
// engine.Fold and Options.Policy (after an engine upgrade, say), replaces
// the projections that differ and appends a change to the feed for each
// inquiry whose status, decision or redacted flag moved. It runs as one
// update, so ingestion waits for it; bodies are parsed in parallel.
//
// Errors: an error naming the event when a stored body no longer parses
// (nothing is changed then), ctx's error when ctx ended before it started,
// and an error matching engine.ErrUnavailable when the store failed.
func (db *DB) Rebuild(ctx context.Context) (RebuildReport, error) {
	start := time.Now()
	if db.writer == nil {
		return RebuildReport{}, fmt.Errorf("%w: store: %s was opened read-only", engine.ErrUnavailable, db.path)
	}
	var rep RebuildReport
	err := db.writer.do(ctx, func(t *tx) error {
		rep = RebuildReport{}
		return rebuild(t, db.opts.Policy, start, &rep)
	})
	rep.Duration = time.Since(start)
	return rep, err
}

// derived is one inquiry's projection as the log folds it.
type derived struct {
	inq *engine.Inquiry
	doc []byte
	err error
}

func rebuild(t *tx, p engine.Policy, now time.Time, rep *RebuildReport) error {
	stored, err := storedDocs(t.sql)
	if err != nil {
		return err
	}
	rows, err := t.sql.Query(`SELECT object_id, event_id, body FROM events
		WHERE object_type = 'inquiry' ORDER BY object_id, seq`)
	if err != nil {
		return unavailable("rebuild: read events", err)
	}
	defer rows.Close()

	type job struct {
		id     string
		ids    []string
		bodies [][]byte
	}
	jobs := make(chan job, 64)
	var (
		mu      sync.Mutex
		changed []derived
		wg      sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				d := derive(j.id, j.ids, j.bodies, p)
				if d.err == nil && bytes.Equal(d.doc, stored[j.id]) {
					continue
				}
				mu.Lock()
				changed = append(changed, d)
				mu.Unlock()
			}
		})
	}
	var (
		cur     job
		scanErr error
	)
	flush := func() {
		if cur.id != "" {
			jobs <- cur
			rep.Inquiries++
		}
	}
	for rows.Next() {
		var id, eventID string
		var body []byte
		if scanErr = rows.Scan(&id, &eventID, &body); scanErr != nil {
			break
		}
		if id != cur.id {
			flush()
			cur = job{id: id}
		}
		cur.ids, cur.bodies = append(cur.ids, eventID), append(cur.bodies, body)
		rep.Events++
	}
	flush()
	close(jobs)
	wg.Wait()
	if err := errors.Join(scanErr, rows.Err(), rows.Close()); err != nil {
		return unavailable("rebuild: read events", err)
	}
	slices.SortFunc(changed, func(a, b derived) int { return cmp.Compare(a.inq.ID, b.inq.ID) })
	for _, d := range changed {
		if d.err != nil {
			return d.err
		}
	}
	for _, d := range changed {
		if err := replaceProjection(t, d, stored[d.inq.ID], now, rep); err != nil {
			return err
		}
	}
	return nil
}

// storedDocs loads every projection's JSON by inquiry id.
func storedDocs(q *sql.Tx) (map[string][]byte, error) {
	rows, err := q.Query(`SELECT id, doc FROM inquiries`)
	if err != nil {
		return nil, unavailable("rebuild: read projections", err)
	}
	defer rows.Close()
	docs := map[string][]byte{}
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, unavailable("rebuild: read projections", err)
		}
		docs[id] = doc
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("rebuild: read projections", err)
	}
	return docs, nil
}

// derive parses an inquiry's stored bodies and folds them.
func derive(id string, eventIDs []string, bodies [][]byte, p engine.Policy) derived {
	events := make([]*engine.Event, len(bodies))
	for i, b := range bodies {
		ev, err := engine.Parse(b)
		if err != nil {
			return derived{inq: &engine.Inquiry{ID: id}, err: fmt.Errorf("store: rebuild: stored event %s of inquiry %s no longer parses: %w", eventIDs[i], id, err)}
		}
		events[i] = ev
	}
	inq, _ := engine.Fold(id, events, p)
	doc, err := inq.MarshalJSON()
	return derived{inq: inq, doc: doc, err: err}
}

// replaceProjection saves a re-derived projection and records the change
// of status, decision or redaction it makes, if any.
func replaceProjection(t *tx, d derived, oldDoc []byte, now time.Time, rep *RebuildReport) error {
	var old engine.Inquiry
	if oldDoc != nil {
		o, err := decodeInquiry(oldDoc)
		if err != nil {
			return err
		}
		old = *o
	}
	if err := t.SaveInquiry(d.inq); err != nil {
		return err
	}
	rep.Changed = append(rep.Changed, d.inq.ID)
	if old.Status == d.inq.Status && old.Decision == d.inq.Decision && old.Redacted == d.inq.Redacted {
		return nil
	}
	rep.Changes++
	return t.AppendChange(&engine.Change{
		InquiryID: d.inq.ID, EventID: d.inq.LastEventID, FromStatus: old.Status, ToStatus: d.inq.Status,
		Decision: d.inq.Decision, Redacted: d.inq.Redacted, At: now,
	})
}

// Stats is a summary of what a database holds.
type Stats struct {
	Events      int64 // in the log
	Inquiries   int64 // projections
	Anomalies   int64 // summed over every projection
	Changes     int64 // rows of the change feed
	DeadLetters int64
	Bytes       int64 // database pages plus the WAL file
}

// Stats counts what the database holds, from one read snapshot. Errors:
// engine.ErrUnavailable.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	// Events and changes are never deleted and their seq is AUTOINCREMENT,
	// rolled back with the writes that took it: the highest seq is the count.
	err := db.read.QueryRowContext(ctx, `SELECT
		(SELECT coalesce(max(seq), 0) FROM events),
		(SELECT count(*) FROM inquiries),
		(SELECT coalesce(sum(anomalies), 0) FROM inquiries),
		(SELECT coalesce(max(seq), 0) FROM changes),
		(SELECT count(*) FROM dead_letters),
		(SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size)`).
		Scan(&s.Events, &s.Inquiries, &s.Anomalies, &s.Changes, &s.DeadLetters, &s.Bytes)
	if err != nil {
		return Stats{}, unavailable("stats", err)
	}
	fi, err := os.Stat(db.path + "-wal")
	switch {
	case err == nil:
		s.Bytes += fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return Stats{}, unavailable("stats", err)
	}
	return s, nil
}
