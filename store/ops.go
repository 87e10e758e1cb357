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
// inquiry whose status, decision or redacted flag moved. An inquiry that
// becomes redacted has its bodies, and those of its related events,
// scrubbed as at ingest. It runs as one update, so ingestion waits for
// it; bodies are parsed in parallel.
//
// Errors: an error naming the event when a stored body no longer parses
// (nothing is changed then), ctx's error when ctx ended before it started,
// and an error matching engine.ErrUnavailable when the store failed.
func (db *DB) Rebuild(ctx context.Context) (RebuildReport, error) {
	return db.RebuildWith(ctx, db.opts.Policy)
}

// derived is one inquiry's projection as the log folds it.
type derived struct {
	inq *engine.Inquiry
	doc []byte
	seq int64 // of the event that did not parse, with err
	err error
}

func rebuild(t *tx, p engine.Policy, now time.Time, rep *RebuildReport) error {
	// Whatever is forgotten is scrubbed before it is folded: a body put
	// back by hand, or by an older personad, is forgotten again.
	if err := rescrubForgotten(t); err != nil {
		return err
	}
	stored, err := storedDocs(t.sql)
	if err != nil {
		return err
	}
	var changed []derived
	if err := foldAll(t.sql, p, t.rawBodies, rep, func(d derived) {
		if d.err != nil || !bytes.Equal(d.doc, stored[d.inq.ID]) {
			changed = append(changed, d)
		}
	}); err != nil {
		return err
	}
	slices.SortFunc(changed, func(a, b derived) int { return cmp.Compare(a.inq.ID, b.inq.ID) })
	for _, d := range changed {
		if d.err != nil {
			return describeFoldError(t.sql, d)
		}
	}
	for _, d := range changed {
		if err := replaceProjection(t, p, d, stored[d.inq.ID], now, rep); err != nil {
			return err
		}
	}
	if t.noLookupColumns {
		return nil // a migration step before the columns existed
	}
	want, drifted, err := lookupDrift(t.sql)
	if err != nil || len(drifted) == 0 {
		return err
	}
	if err := relist(t.sql, want); err != nil {
		return err
	}
	rep.Changed = append(rep.Changed, drifted...)
	slices.Sort(rep.Changed)
	rep.Changed = slices.Compact(rep.Changed)
	return nil
}

// foldAll folds every inquiry of the log with p, in parallel, and calls
// visit with each result, one call at a time; raw says the bodies are
// stored as they are (tx.rawBodies), not encoded.
func foldAll(q *sql.Tx, p engine.Policy, raw bool, rep *RebuildReport, visit func(derived)) error {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	jobs := make(chan *foldJob, 64)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				d := j.derive(p, raw)
				j.release()
				mu.Lock()
				visit(d)
				mu.Unlock()
			}
		})
	}
	err := readInquiryEvents(q, jobs, rep)
	close(jobs)
	wg.Wait()
	return err
}

// inquiryBodiesSQL reads the bodies of every inquiry event, inquiry by
// inquiry: events_by_object, seq sorted per inquiry.
const inquiryBodiesSQL = `SELECT object_id, seq, ` + conflictedColumn + `, body FROM events
	WHERE object_type = 'inquiry' ORDER BY object_id, seq`

// readInquiryEvents streams the bodies of every inquiry event, inquiry by
// inquiry, into jobs.
func readInquiryEvents(q *sql.Tx, jobs chan<- *foldJob, rep *RebuildReport) error {
	rows, err := q.Query(inquiryBodiesSQL)
	if err != nil {
		return unavailable("rebuild: read events", err)
	}
	defer rows.Close()
	var cur *foldJob
	for rows.Next() {
		var (
			id, body   sql.RawBytes // copied below: no second allocation per row
			seq        int64
			conflicted bool
		)
		if err := rows.Scan(&id, &seq, &conflicted, &body); err != nil {
			return unavailable("rebuild: read events", err)
		}
		if cur == nil || string(id) != cur.id {
			if cur != nil {
				jobs <- cur
			}
			cur = newFoldJob(string(id))
			rep.Inquiries++
		}
		cur.add(seq, conflicted, body)
		rep.Events++
	}
	if cur != nil {
		jobs <- cur
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return unavailable("rebuild: read events", err)
	}
	return nil
}

// foldJob holds one inquiry's stored bodies, back to back in a pooled
// buffer: a rebuild reads gigabytes, and the garbage collector need not
// see every body twice.
type foldJob struct {
	id         string
	seqs       []int64
	conflicted []bool // Record.Conflicted, by event
	ends       []int
	buf        *[]byte
}

var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func newFoldJob(id string) *foldJob {
	return &foldJob{id: id, buf: bodyBuffers.Get().(*[]byte)}
}

func (j *foldJob) add(seq int64, conflicted bool, body []byte) {
	*j.buf = append(*j.buf, body...)
	j.seqs, j.ends = append(j.seqs, seq), append(j.ends, len(*j.buf))
	j.conflicted = append(j.conflicted, conflicted)
}

// release returns the buffer; the parsed events hold copies.
func (j *foldJob) release() {
	*j.buf = (*j.buf)[:0]
	bodyBuffers.Put(j.buf)
	j.buf = nil
}

// derive decodes and parses the inquiry's stored bodies and folds them.
func (j *foldJob) derive(p engine.Policy, raw bool) derived {
	events := make([]*engine.Event, len(j.seqs))
	start := 0
	for i, end := range j.ends {
		body, err := (*j.buf)[start:end], error(nil)
		if !raw {
			body, err = decodeBody(body)
		}
		if err != nil {
			return derived{inq: &engine.Inquiry{ID: j.id}, seq: j.seqs[i], err: err}
		}
		ev, err := engine.Parse(body)
		if err != nil {
			return derived{inq: &engine.Inquiry{ID: j.id}, seq: j.seqs[i], err: err}
		}
		ev.Conflicted = j.conflicted[i]
		events[i], start = ev, end
	}
	inq, _ := engine.Fold(j.id, events, p)
	doc, err := inq.MarshalJSON()
	return derived{inq: inq, doc: doc, err: err}
}

// describeFoldError names the event whose body no longer parses.
func describeFoldError(q *sql.Tx, d derived) error {
	var eventID string
	if err := q.QueryRow(`SELECT event_id FROM events WHERE seq = ?`, d.seq).Scan(&eventID); err != nil {
		eventID = fmt.Sprintf("#%d", d.seq)
	}
	return fmt.Errorf("store: rebuild: stored event %s of inquiry %s no longer parses: %w", eventID, d.inq.ID, d.err)
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

// replaceProjection saves a re-derived projection and records the change
// of status, decision or redaction it makes, if any.
func replaceProjection(t *tx, p engine.Policy, d derived, oldDoc []byte, now time.Time, rep *RebuildReport) error {
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
	if d.inq.Redacted && !old.Redacted {
		// The log holds a redaction the projection missed (an engine that
		// did not know it, a damaged projection): forget the bodies now,
		// as the ingest of the redaction would have.
		rose, err := t.Forget(d.inq.ID, engine.ForgetKeepReference)
		if err != nil {
			return err
		}
		if err := engine.ForgetStored(t, rose); err != nil {
			return err
		}
		for _, f := range rose { // what belongs to it, an inquiry of its account say
			if f.ID == d.inq.ID {
				continue
			}
			c, err := engine.Refold(t, f.ID, p)
			if err != nil {
				return err
			}
			if c != nil {
				c.EventID, c.At = d.inq.LastEventID, now
				rep.Changes++
				if err := t.AppendChange(c); err != nil {
					return err
				}
			}
		}
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
	err := db.queryRow(ctx, `SELECT
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
