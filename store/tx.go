package store

import (
	"bytes"
	"cmp"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/personad/personad/engine"
)

// stmtID names a statement the writer prepares once.
type stmtID int

const (
	sFindEvent stmtID = iota
	sFindEventByID
	sRecordDelivery
	sAppendEvent
	sInquiryEvents
	sInquiryEventsNoConflicts
	sInquiryEventsNoSource
	sInquiry
	sSaveInquiry
	sInsertInquiry
	sUpdateInquiry
	sUpdateInquiryByUpdate
	sUpdateInquiryDoc
	sSaveInquiryNoLookup
	sAppendChange
	sObjectBodies
	sSetBody
	sForgetting
	sLinked
	sParts
	sForget
	sDeadLetters
	sSetDeadLetterBody
	sAppendDeadLetter
	sFindDeadLetter
	sDeadLetterDelivery
	sFindConflict
	sEventBody
	sAppendConflict
	sConflictDelivery
	sConflictBodies
	sSetConflictBody
	sDataVersion
	sSavepoint
	sRelease
	sRollbackTo
	sSetDrift
	sClearDrift
	sAddLink // INSERT of one link; sAddLink+n-1 inserts n, up to maxLinksPerInsert
	numStmts = sAddLink + maxLinksPerInsert
)

// recordColumns are the columns scanRecords reads, in its order.
const recordColumns = `seq, event_id, name, object_type, object_id, related_inquiry_id, created_at,
	received_at, attempts_made, deliveries, outcome, sha256, body, parts, ` + sourceColumn + `, ` + conflictedColumn

// versionEventSource is the schema version that gives each event its
// source (migrations/0009_event_source.sql). The migration steps of
// earlier versions read events without it (tx.noSource).
const versionEventSource = 9

// sourceColumn is Record.Source's column; before versionEventSource
// every event came by webhook.
const sourceColumn = `source`

// recordColumnsNoSource are recordColumns for a schema before
// versionEventSource.
var recordColumnsNoSource = strings.Replace(recordColumns, sourceColumn+`, `, `'`+engine.SourceWebhook+`', `, 1)

// conflictedColumn says whether a conflict is kept for the events row
// (Record.Conflicted): a probe of conflicts_by_event, nearly always empty.
const conflictedColumn = `EXISTS (SELECT 1 FROM conflicts WHERE conflicts.event_id = events.event_id)`

var writerSQL = [numStmts]string{
	sFindEvent: `SELECT seq, outcome, sha256, object_type, object_id FROM events WHERE event_key = ? AND event_id = ?`,
	// Before bodiesEncodedVersion, which gave events their event_key.
	sFindEventByID: `SELECT seq, outcome, sha256, object_type, object_id FROM events WHERE event_id = ?`,
	sRecordDelivery: `UPDATE events SET deliveries = deliveries + 1, attempts_made = max(attempts_made, ?)
		WHERE seq = ?`,
	sAppendEvent: `INSERT INTO events (seq, event_key, event_id, name, object_type, object_id, related_inquiry_id,
		created_at, received_at, attempts_made, deliveries, outcome, sha256, body, chain, parts, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	sInquiryEvents: `SELECT ` + recordColumns + ` FROM events
		WHERE object_type = 'inquiry' AND object_id = ? ORDER BY seq`,
	// Before version 5, so before versionEventSource too.
	sInquiryEventsNoConflicts: `SELECT ` + strings.Replace(recordColumnsNoSource, conflictedColumn, "0", 1) + ` FROM events
		WHERE object_type = 'inquiry' AND object_id = ? ORDER BY seq`,
	sInquiryEventsNoSource: `SELECT ` + recordColumnsNoSource + ` FROM events
		WHERE object_type = 'inquiry' AND object_id = ? ORDER BY seq`,
	sInquiry: `SELECT doc FROM inquiries WHERE id = ?`,
	sSaveInquiry: `INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc,
			reference_id, account_id, template_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, decision = excluded.decision,
			redacted = excluded.redacted, updated_at = excluded.updated_at,
			anomalies = excluded.anomalies, doc = excluded.doc,
			reference_id = excluded.reference_id, account_id = excluded.account_id,
			template_id = excluded.template_id, created_at = excluded.created_at`,
	sInsertInquiry: `INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc,
			reference_id, account_id, template_id, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`,
	sUpdateInquiry: `UPDATE inquiries SET status = ?2, decision = ?3, redacted = ?4, updated_at = ?5,
		anomalies = ?6, doc = ?7, reference_id = ?8, account_id = ?9, template_id = ?10,
		created_at = ?11 WHERE id = ?1`,
	// sUpdateInquiryByUpdate leaves the columns of the listings by
	// reference, account and template alone, sUpdateInquiryDoc every
	// listing column: inquiryUpdate picks the one a projection needs.
	sUpdateInquiryByUpdate: `UPDATE inquiries SET status = ?2, decision = ?3, redacted = ?4, updated_at = ?5,
		anomalies = ?6, doc = ?7 WHERE id = ?1`,
	sUpdateInquiryDoc: `UPDATE inquiries SET redacted = ?2, anomalies = ?3, doc = ?4 WHERE id = ?1`,
	sSaveInquiryNoLookup: `INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, decision = excluded.decision,
			redacted = excluded.redacted, updated_at = excluded.updated_at,
			anomalies = excluded.anomalies, doc = excluded.doc`,
	sAppendChange: `INSERT INTO changes (inquiry_id, event_id, from_status, to_status, decision, redacted, at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
	sObjectBodies: `SELECT seq, body FROM events WHERE object_id = ?`,
	sForgetting:   `SELECT mode FROM forgotten WHERE id = ?`,
	sLinked:       `SELECT object_id FROM links WHERE owner_id = ?`,
	sParts:        `SELECT parts FROM events WHERE object_id = ? AND parts IS NOT NULL`,
	sForget: `INSERT INTO forgotten (id, mode, at) VALUES (?1, ?2, ?3)
		ON CONFLICT (id) DO UPDATE SET mode = max(mode, excluded.mode)`,
	sDeadLetters:        `SELECT seq, body FROM dead_letters`,
	sSetDeadLetterBody:  `UPDATE dead_letters SET body = ? WHERE seq = ?`,
	sSetBody:            `UPDATE events SET body = ? WHERE seq = ?`,
	sAppendDeadLetter:   `INSERT INTO dead_letters (received_at, reason, sha256, body) VALUES (?, ?, ?, ?)`,
	sFindDeadLetter:     `SELECT seq FROM dead_letters WHERE sha256 = ? ORDER BY seq LIMIT 1`,
	sDeadLetterDelivery: `UPDATE dead_letters SET deliveries = deliveries + 1 WHERE seq = ?`,
	sFindConflict:       `SELECT seq FROM conflicts WHERE event_id = ? AND sha256 = ?`,
	sEventBody:          `SELECT body FROM events WHERE seq = ?`,
	sAppendConflict: `INSERT INTO conflicts (event_id, object_id, body_object_id, received_at, deliveries, sha256, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
	sConflictDelivery: `UPDATE conflicts SET deliveries = deliveries + 1 WHERE seq = ?`,
	sConflictBodies:   `SELECT seq, body FROM conflicts WHERE object_id = ?1 OR body_object_id = ?1`,
	sSetConflictBody:  `UPDATE conflicts SET body = ? WHERE seq = ?`,
	sDataVersion:      `PRAGMA data_version`,
	sSavepoint:        `SAVEPOINT update_fn`,
	sRelease:          `RELEASE update_fn`,
	sRollbackTo:       `ROLLBACK TO update_fn`,
	sSetDrift: `INSERT INTO drifts (inquiry_id, status, persona_status, checked_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (inquiry_id) DO UPDATE SET status = ?2, persona_status = ?3, checked_at = ?4`,
	sClearDrift: `DELETE FROM drifts WHERE inquiry_id = ?`,
}

func init() {
	for n := 1; n <= maxLinksPerInsert; n++ {
		writerSQL[sAddLink+stmtID(n-1)] = `INSERT OR IGNORE INTO links (object_id, owner_id) VALUES (?, ?)` +
			strings.Repeat(", (?, ?)", n-1)
	}
}

// statements are prepared once on the writer connection.
type statements [numStmts]*sql.Stmt

func prepare(db *sql.DB) (*statements, error) {
	var s statements
	for i, q := range writerSQL {
		st, err := db.Prepare(q)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		s[i] = st
	}
	return &s, nil
}

func (s *statements) close() {
	for _, st := range s {
		if st != nil {
			st.Close()
		}
	}
}

// tx implements engine.Tx on the writer's transaction.
type tx struct {
	sql      *sql.Tx
	stmts    *statements
	bound    [numStmts]*sql.Stmt // stmts bound to sql, on first use
	cache    *projections
	scrubbed bool // ReplaceBodies ran
	// pendingLinks are links AddLinks has yet to insert (flushLinks).
	pendingLinks []engine.Link
	head         ChainHead // the last event's seq and link, AppendEvent's included
	// noConflicts: a migration step of a version before 5, whose schema
	// has no conflicts table yet (and so no conflicts).
	noConflicts bool
	// noLookupColumns: a migration step of a version before
	// lookupColumnsVersion, whose inquiries table has no reference_id,
	// account_id, template_id or created_at yet; the step of that version
	// fills them in from doc for every projection.
	noLookupColumns bool
	// noSource: a migration step of a version before versionEventSource,
	// whose events table has no source column yet.
	noSource bool
	// rawBodies: a migration step of a version before
	// bodiesEncodedVersion, whose body columns hold the bodies as they
	// are, and whose events have no event_key.
	rawBodies bool
}

func (t *tx) stmt(id stmtID) *sql.Stmt {
	if t.bound[id] == nil {
		if t.stmts == nil { // a migration's transaction: prepare on it
			st, err := t.sql.Prepare(writerSQL[id])
			if err != nil {
				panic(fmt.Sprintf("store: prepare %q: %v", writerSQL[id], err)) // writerSQL is fixed
			}
			t.bound[id] = st
			return st
		}
		t.bound[id] = t.sql.Stmt(t.stmts[id])
	}
	return t.bound[id]
}

// RecordDelivery implements engine.Tx. Most deliveries are new events: a
// lookup in the event_id index answers them without writing.
func (t *tx) RecordDelivery(eventID string, attemptsMade int, sum [32]byte) (engine.Redelivery, error) {
	var (
		seq     int64
		outcome string
		stored  []byte
		red     engine.Redelivery
	)
	find := t.stmt(sFindEvent).QueryRow(eventKey(eventID), eventID)
	if t.rawBodies {
		find = t.stmt(sFindEventByID).QueryRow(eventID)
	}
	err := find.Scan(&seq, &outcome, &stored, &red.ObjectType, &red.ObjectID)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return engine.Redelivery{}, nil
	case err != nil:
		return engine.Redelivery{}, unavailable("find event", err)
	}
	red.Seen, red.Outcome = true, engine.Outcome(outcome)
	if !bytes.Equal(stored, sum[:]) {
		red.Conflict = true
		copy(red.SHA256[:], stored)
		var body []byte
		if err := t.stmt(sEventBody).QueryRow(seq).Scan(&body); err != nil {
			return engine.Redelivery{}, unavailable("read event body", err)
		}
		if red.Body, err = t.decodeBody(body); err != nil {
			return engine.Redelivery{}, err
		}
		return red, nil
	}
	if _, err := t.stmt(sRecordDelivery).Exec(attemptsMade, seq); err != nil {
		return engine.Redelivery{}, unavailable("record delivery", err)
	}
	return red, nil
}

// AppendConflict implements engine.Tx.
func (t *tx) AppendConflict(c *engine.Conflict) (bool, error) {
	var seq int64
	switch err := t.stmt(sFindConflict).QueryRow(c.EventID, c.SHA256[:]).Scan(&seq); {
	case err == nil:
		if _, err := t.stmt(sConflictDelivery).Exec(seq); err != nil {
			return false, unavailable("record conflict delivery", err)
		}
		c.Seq = seq
		return true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, unavailable("find conflict", err)
	}
	res, err := t.stmt(sAppendConflict).Exec(c.EventID, c.ObjectID, c.BodyObjectID, c.ReceivedAt.UnixMilli(),
		max(c.Deliveries, 1), c.SHA256[:], t.encodeBody(c.Body))
	if err != nil {
		return false, unavailable("append conflict", err)
	}
	c.Seq, err = res.LastInsertId()
	// The stored event's record is Conflicted now.
	t.cache.dropHistory(c.ObjectID)
	return false, err
}

// AppendEvent implements engine.Tx. The event takes the seq after the
// head's and the chain link that follows from the head's (see chainLink);
// the writer keeps the head, so no query reads it back. The body stored
// is rec.EncodedBody, which the engine encoded outside the writer
// (DB.EncodeBody), or else rec.Body encoded here.
func (t *tx) AppendEvent(rec *engine.Record) error {
	if t.rawBodies {
		return errors.New("store: no event is appended by a migration step before version 11")
	}
	seq, received := t.head.Seq+1, rec.ReceivedAt.UnixMilli()
	link := chainLink(t.head.Chain, seq, rec.EventID, rec.SHA256, received)
	body := rec.EncodedBody
	if body == nil {
		body = t.encodeBody(rec.Body)
	}
	_, err := t.stmt(sAppendEvent).Exec(seq, eventKey(rec.EventID), rec.EventID, rec.Name, rec.ObjectType, rec.ObjectID,
		nullString(rec.RelatedInquiryID), rec.CreatedAt.UnixMilli(), received, rec.AttemptsMade, rec.Deliveries,
		string(rec.Outcome), rec.SHA256[:], body, link[:], nullString(strings.Join(rec.Parts, " ")),
		cmp.Or(rec.Source, engine.SourceWebhook))
	if isAlreadyStored(err) {
		return fmt.Errorf("store: event %s already stored", rec.EventID)
	}
	if err != nil {
		return unavailable("append event", err)
	}
	t.head = ChainHead{Seq: seq, Chain: link}
	rec.Seq = seq
	if rec.ObjectType == "inquiry" {
		stored, known := t.cache.stored(rec.ObjectID)
		t.cache.appended(rec.ObjectID, rec.Event, known && !stored)
	}
	return nil
}

// InquiryEvents implements engine.Tx.
func (t *tx) InquiryEvents(inquiryID string) ([]engine.Record, error) {
	id := sInquiryEvents
	switch {
	case t.noConflicts:
		id = sInquiryEventsNoConflicts
	case t.noSource:
		id = sInquiryEventsNoSource
	}
	rows, err := t.stmt(id).Query(inquiryID)
	if err != nil {
		return nil, unavailable("read events", err)
	}
	return scanRecords(rows, t.rawBodies)
}

// InquiryHistory implements engine.HistoryTx: from the writer's cache
// when it holds the inquiry's log, else read, parsed and cached.
func (t *tx) InquiryHistory(inquiryID string) ([]*engine.Event, error) {
	if events, ok := t.cache.history(inquiryID); ok {
		return events, nil
	}
	t.cache.histMisses++
	recs, err := t.InquiryEvents(inquiryID)
	if err != nil {
		return nil, err
	}
	events, err := engine.ParseRecords(recs)
	if err != nil {
		return nil, err
	}
	t.cache.historyLoaded(inquiryID, events)
	return events, nil
}

// bodiesRewritten notes that the transaction rewrote stored bodies of any
// objects: the WAL must lose the old ones, and no cached parse of them may
// be used.
func (t *tx) bodiesRewritten() {
	t.scrubbed = true
	t.cache.bodiesRewritten()
}

// Inquiry implements engine.Tx.
func (t *tx) Inquiry(inquiryID string) (*engine.Inquiry, error) {
	if inq, ok := t.cache.get(inquiryID); ok {
		return inq, nil
	}
	var doc []byte
	err := t.stmt(sInquiry).QueryRow(inquiryID).Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		t.cache.loaded(inquiryID, nil)
		return nil, nil
	case err != nil:
		return nil, unavailable("read inquiry", err)
	}
	inq, err := decodeInquiry(doc)
	if err != nil {
		return nil, err
	}
	t.cache.loaded(inquiryID, inq)
	return inq, nil
}

// SaveInquiry implements engine.Tx.
func (t *tx) SaveInquiry(inq *engine.Inquiry) error {
	doc, err := inq.MarshalJSON()
	if err != nil {
		return err
	}
	if t.noLookupColumns {
		if _, err := t.stmt(sSaveInquiryNoLookup).Exec(inq.ID, nullable(inq.Status), nullable(inq.Decision),
			inq.Redacted, inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc)); err != nil {
			return unavailable("save inquiry", err)
		}
		t.cache.saved(inq)
		return nil
	}
	// The cache usually knows whether the row exists; a plain INSERT or
	// UPDATE is cheaper than an upsert, which tries the insert first.
	id := sSaveInquiry
	if stored, known := t.cache.stored(inq.ID); known {
		id = sInsertInquiry
		if stored {
			id = t.inquiryUpdate(inq)
		}
	}
	var res sql.Result
	switch id {
	case sUpdateInquiryDoc:
		res, err = t.stmt(id).Exec(inq.ID, inq.Redacted, len(inq.Anomalies), string(doc))
	case sUpdateInquiryByUpdate:
		res, err = t.stmt(id).Exec(inq.ID, nullable(inq.Status), nullable(inq.Decision),
			inq.Redacted, inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc))
	default:
		res, err = t.stmt(id).Exec(inq.ID, nullable(inq.Status), nullable(inq.Decision),
			inq.Redacted, inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc),
			nullString(inq.ReferenceID), nullString(inq.AccountID), nullString(inq.TemplateID),
			inq.ListedAt(true).UnixMilli())
	}
	if err != nil {
		return unavailable("save inquiry", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.cache.reset()
		return fmt.Errorf("store: saving inquiry %s changed %d rows (%v): the writer's cache was out of step", inq.ID, n, err)
	}
	t.cache.saved(inq)
	return nil
}

// AppendChange implements engine.Tx.
func (t *tx) AppendChange(c *engine.Change) error {
	res, err := t.stmt(sAppendChange).Exec(c.InquiryID, c.EventID, nullable(c.FromStatus),
		nullable(c.ToStatus), nullable(c.Decision), c.Redacted, c.At.UnixMilli())
	if err != nil {
		return unavailable("append change", err)
	}
	c.Seq, err = res.LastInsertId()
	return err
}

// AppendDeadLetter implements engine.Tx.
func (t *tx) AppendDeadLetter(d *engine.DeadLetter) (bool, error) {
	var seq int64
	switch err := t.stmt(sFindDeadLetter).QueryRow(d.SHA256[:]).Scan(&seq); {
	case err == nil:
		if _, err := t.stmt(sDeadLetterDelivery).Exec(seq); err != nil {
			return false, unavailable("record dead letter delivery", err)
		}
		d.Seq = seq
		return true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return false, unavailable("find dead letter", err)
	}
	res, err := t.stmt(sAppendDeadLetter).Exec(d.ReceivedAt.UnixMilli(), d.Reason, d.SHA256[:], t.encodeBody(d.Body))
	if err != nil {
		return false, unavailable("append dead letter", err)
	}
	d.Seq, err = res.LastInsertId()
	return false, err
}

// scanRecords reads rows of recordColumns and closes rows; raw says the
// bodies are stored as they are (tx.rawBodies), not encoded.
func scanRecords(rows *sql.Rows, raw bool) ([]engine.Record, error) {
	defer rows.Close()
	var recs []engine.Record
	for rows.Next() {
		var (
			r                 engine.Record
			related, parts    sql.NullString
			created, received int64
			outcome           string
			sum, body         []byte
		)
		if err := rows.Scan(&r.Seq, &r.EventID, &r.Name, &r.ObjectType, &r.ObjectID, &related, &created, &received,
			&r.AttemptsMade, &r.Deliveries, &outcome, &sum, &body, &parts, &r.Source, &r.Conflicted); err != nil {
			return nil, unavailable("read events", err)
		}
		r.Body = body
		if !raw {
			var err error
			if r.Body, err = decodeBody(body); err != nil {
				return nil, fmt.Errorf("%w (event %s)", err, r.EventID)
			}
		}
		if parts.Valid {
			r.Parts = strings.Fields(parts.String)
		}
		r.RelatedInquiryID = related.String
		r.CreatedAt, r.ReceivedAt = fromMillis(created), fromMillis(received)
		r.Outcome = engine.Outcome(outcome)
		copy(r.SHA256[:], sum)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read events", err)
	}
	return recs, nil
}

func decodeInquiry(doc []byte) (*engine.Inquiry, error) {
	inq := new(engine.Inquiry)
	if err := inq.UnmarshalJSON(doc); err != nil {
		return nil, fmt.Errorf("store: stored projection does not decode: %w", err)
	}
	return inq, nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullable stores the empty status as NULL.
func nullable(s engine.Status) any {
	if s == "" {
		return nil
	}
	return string(s)
}

// nullString stores the empty string as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// blob keeps an empty body from binding as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
