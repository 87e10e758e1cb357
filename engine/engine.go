package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Engine ties parse → dedup → fold → decide → store together. It is safe
// for concurrent use; concurrency and durability are the Store's.
type Engine struct {
	store  Store
	policy Policy

	mu      sync.Mutex
	subs    map[int]func(Change)
	nextSub int
	changed chan struct{} // closed and replaced after each committed change
}

// New returns an engine that keeps its state in store and decides with p.
func New(store Store, p Policy) *Engine {
	return &Engine{store: store, policy: p, subs: map[int]func(Change){}, changed: make(chan struct{})}
}

// Policy returns the decision policy the engine folds with.
func (e *Engine) Policy() Policy { return e.policy }

// Store returns the store the engine writes to.
func (e *Engine) Store() Store { return e.store }

// Delivery is one event as received: a webhook request, or an event
// fetched from Persona's Events API.
type Delivery struct {
	Body         []byte    // raw request body, exactly as received
	ReceivedAt   time.Time // when it arrived (the engine reads no clock)
	AttemptsMade int       // Persona-Webhook-Attempts-Made, 0 when absent
	// Source is SourceWebhook or SourceAPI; "" means SourceWebhook.
	Source string
	// encodedBody is Body in the store's form, when the store is a
	// BodyEncoder: ingestEvent fills it in.
	encodedBody []byte
}

// source returns d's Source, SourceWebhook for "". Errors: one matching
// ErrInvalid for any other value (a caller's mistake). Ingest checks it
// once; what it hands on carries the value returned.
func (d Delivery) source() (string, error) {
	switch d.Source {
	case "", SourceWebhook:
		return SourceWebhook, nil
	case SourceAPI:
		return SourceAPI, nil
	}
	return "", fmt.Errorf("%w: delivery source %s is neither %q nor %q", ErrInvalid, quoteShort(d.Source), SourceWebhook, SourceAPI)
}

// Result reports what one delivery did.
type Result struct {
	EventID   string
	Name      string
	InquiryID string // "" for events about other objects
	Outcome   Outcome
	Duplicate bool // the event was stored before; its stored body stands
	// Conflict: a duplicate whose body is not the stored one's (another
	// SHA-256). The stored event stands; this body is kept as a Conflict
	// and the inquiry's projection notes an AnomalyConflictingRedelivery.
	Conflict bool
	// ConflictRepeated: that same body was kept as a conflict before;
	// only its delivery was counted.
	ConflictRepeated bool
	Before           Status // the inquiry's status before the delivery
	After            Status // and after it
	Change           *Change
	// Redaction reports that the event, stored now, redacts its object
	// (an inquiry's, an account's...), so personad forgot what it says.
	Redaction bool
	// Anomalies are those the delivery added to its inquiry's projection
	// (a late event that re-folds the inquiry adds only the new ones).
	Anomalies []Anomaly
}

// Ingest stores a delivery exactly once and folds it into its inquiry.
//
// It returns after the event is durable. An event id stored before is a
// duplicate (Result.Duplicate): the same body counts a delivery, another
// body is kept as a conflict (Result.Conflict) and folds nothing. Errors: a *ParseError (matching
// ErrMalformed) when the body is not a Persona event, in which case the body
// was kept as a dead letter, once per SHA-256 (the Result's Outcome is
// OutcomeDeadLetter, and Duplicate says it was kept before); an error matching ErrUnavailable when the store
// could not commit, in which case nothing was stored and the sender should
// retry; an error matching ErrInvalid, with nothing stored, when
// d.Source is not one of the Source constants.
func (e *Engine) Ingest(ctx context.Context, d Delivery) (Result, error) {
	src, err := d.source()
	if err != nil {
		return Result{}, err
	}
	d.Source = src
	ev, err := Parse(d.Body)
	if err != nil {
		dl := &DeadLetter{ReceivedAt: d.ReceivedAt, Body: d.Body, SHA256: sha256.Sum256(d.Body), Reason: err.Error(), Deliveries: 1}
		var dup bool
		if serr := e.store.Update(ctx, func(tx Tx) error {
			dl.Body = d.Body
			forgotten, err := namesForgotten(tx, d.Body)
			if err != nil {
				return err
			}
			if forgotten {
				dl.Body, _ = ScrubDeadLetter(d.Body)
			}
			dup, err = tx.AppendDeadLetter(dl)
			return err
		}); serr != nil {
			return Result{}, unavailable(serr)
		}
		return Result{Outcome: OutcomeDeadLetter, Duplicate: dup}, err
	}
	return e.ingestEvent(ctx, ev, d, nil)
}

// ingestEvent stores and folds a parsed delivery and then, in the same
// unit, runs then when it is not nil (Replay marks its dead letter
// there). An error of then's is returned as it is; any other failure
// matches ErrUnavailable.
func (e *Engine) ingestEvent(ctx context.Context, ev *Event, d Delivery, then func(Tx) error) (Result, error) {
	// Hash outside the store's unit of work: a group-committing store runs
	// units one after the other, so whatever they do is serial.
	sum := sha256.Sum256(d.Body)
	if enc, ok := e.store.(BodyEncoder); ok {
		d.encodedBody = enc.EncodeBody(d.Body)
	}
	var (
		res  Result
		also []Change // of other inquiries, which a redaction re-folded
	)
	if err := e.store.Update(ctx, func(tx Tx) error {
		res, also = Result{}, also[:0]
		if err := e.apply(tx, ev, d, sum, &res, &also); err != nil || then == nil {
			return err
		}
		if err := then(tx); err != nil {
			return thenError{err}
		}
		return nil
	}); err != nil {
		// Marked by type, not noted in a variable: a store may return
		// before its writer is done with fn (ctx ended), so nothing fn
		// sets may be read after an error.
		var te thenError
		if errors.As(err, &te) && !errors.Is(te.err, ErrUnavailable) {
			return Result{}, te.err
		}
		return Result{}, unavailable(err)
	}
	if res.Change != nil {
		e.publish(*res.Change)
	}
	for _, c := range also {
		e.publish(c)
	}
	return res, nil
}

// thenError is an error of ingestEvent's then.
type thenError struct{ err error }

func (e thenError) Error() string { return e.err.Error() }
func (e thenError) Unwrap() error { return e.err }

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// apply does the work of one delivery inside a store transaction.
func (e *Engine) apply(tx Tx, ev *Event, d Delivery, sum [32]byte, res *Result, also *[]Change) error {
	res.EventID, res.Name = ev.ID, ev.Name
	if ev.IsInquiry() {
		res.InquiryID = ev.ObjectID
	}
	red, err := tx.RecordDelivery(ev.ID, d.AttemptsMade, sum)
	if err != nil {
		return err
	}
	var before *Inquiry
	if ev.IsInquiry() {
		if before, err = tx.Inquiry(ev.ObjectID); err != nil {
			return err
		}
		if before != nil {
			res.Before, res.After = before.Status, before.Status
		}
	}
	if red.Seen {
		res.Duplicate, res.Outcome = true, red.Outcome
		switch {
		case !red.Conflict:
			return nil
		case SameContent(red.Body, d.Body):
			// The same event in other words (another webhook's key
			// inflection, say): a delivery of the stored body.
			_, err := tx.RecordDelivery(ev.ID, d.AttemptsMade, red.SHA256)
			return err
		}
		return e.keepConflict(tx, ev, d, sum, red, res, also)
	}
	res.Redaction = ev.SubjectRedacted
	rec := &Record{
		EventID: ev.ID, Name: ev.Name, ObjectType: ev.ObjectType, ObjectID: ev.ObjectID,
		RelatedInquiryID: ev.RelatedInquiryID, CreatedAt: ev.CreatedAt, ReceivedAt: d.ReceivedAt,
		AttemptsMade: d.AttemptsMade, Deliveries: 1, Body: d.Body, EncodedBody: d.encodedBody, SHA256: sum,
		Outcome: OutcomeUnknown, Parts: ev.Parts, Source: d.Source,
	}
	rose, mode, err := e.learn(tx, ev, d.ReceivedAt, also)
	if err != nil {
		return err
	}
	if mode != ForgetNone {
		// Forget before writing, and fold what is written: a re-fold of
		// the log must give the projection this fold gives.
		if rec.Body, err = scrubFor(mode)(d.Body); err != nil {
			return err
		}
		rec.EncodedBody = nil // of the body as received
		if ev, err = Parse(rec.Body); err != nil {
			return fmt.Errorf("engine: scrubbed body of %s no longer parses: %w", rec.EventID, err)
		}
	}
	rec.Event = ev
	if !ev.IsInquiry() {
		res.Outcome = OutcomeUnknown
		return tx.AppendEvent(rec)
	}

	var (
		after *Inquiry
		step  Step
	)
	if slices.ContainsFunc(rose, func(f Forgotten) bool { return f.ID == ev.ObjectID }) {
		// Its stored bodies were just scrubbed: fold them as they are now.
		after, step, err = e.refold(tx, ev.ObjectID, ev)
	} else {
		after, step, err = e.fold(tx, before, ev)
	}
	if err != nil {
		return err
	}
	rec.Outcome, res.Outcome, res.After = step.Outcome, step.Outcome, after.Status
	res.Anomalies = addedAnomalies(before, after)
	if err := tx.AppendEvent(rec); err != nil {
		return err
	}
	if err := tx.SaveInquiry(after); err != nil {
		return err
	}
	if c := changeBetween(before, after); c != nil {
		c.EventID, c.At = ev.ID, d.ReceivedAt
		if err := tx.AppendChange(c); err != nil {
			return err
		}
		res.Change = c
	}
	return nil
}

// keepConflict keeps a body that arrived under the id of an event stored
// with another body. The log keeps the first: a second body for one event
// id is Persona's mistake or someone else's, and folding it would let a
// redelivery rewrite history. The body is kept once per SHA-256, scrubbed
// as its objects are forgotten, and the stored event's inquiry is folded
// again so that its projection notes the conflict.
func (e *Engine) keepConflict(tx Tx, ev *Event, d Delivery, sum [32]byte, red Redelivery, res *Result, also *[]Change) error {
	res.Conflict = true
	c := &Conflict{
		EventID: ev.ID, ObjectID: red.ObjectID, BodyObjectID: ev.ObjectID,
		ReceivedAt: d.ReceivedAt, SHA256: sum, Body: d.Body, Deliveries: 1,
	}
	mode := ForgetNone
	for _, id := range []string{red.ObjectID, ev.ObjectID} {
		m, err := tx.Forgetting(id)
		if err != nil {
			return err
		}
		mode = max(mode, m)
	}
	if mode == ForgetNone {
		// The body may name other objects than the stored event's (an
		// account that is forgotten, say): fail safe, as a dead letter does.
		named, err := namesForgotten(tx, d.Body)
		if err != nil {
			return err
		}
		if named {
			mode = ForgetAll
		}
	}
	if mode != ForgetNone {
		var err error
		if c.Body, err = scrubFor(mode)(d.Body); err != nil {
			return err
		}
	}
	dup, err := tx.AppendConflict(c)
	if err != nil {
		return err
	}
	res.ConflictRepeated = dup
	if dup || red.ObjectType != "inquiry" {
		return nil
	}
	before, err := tx.Inquiry(red.ObjectID)
	if err != nil {
		return err
	}
	ch, err := Refold(tx, red.ObjectID, e.policy)
	if err != nil {
		return err
	}
	if after, err := tx.Inquiry(red.ObjectID); err != nil {
		return err
	} else if before != nil && after != nil {
		res.Anomalies = addedAnomalies(before, after)
	}
	if ch == nil {
		return nil
	}
	ch.EventID, ch.At = ev.ID, d.ReceivedAt
	if err := tx.AppendChange(ch); err != nil {
		return err
	}
	*also = append(*also, *ch)
	return nil
}

// learn records what the event says belongs to what and whether it
// redacts its object, and forgets what that makes forgotten: the stored
// bodies of every object whose forget mode rose are scrubbed, with the
// dead letters naming them, and the projections of those that are other
// inquiries are folded again from their scrubbed log. It returns the
// objects whose mode rose, and the forget mode of ev's object.
func (e *Engine) learn(tx Tx, ev *Event, at time.Time, also *[]Change) ([]Forgotten, Forget, error) {
	rose, err := e.forgetLearned(tx, ev)
	if err != nil {
		return nil, ForgetNone, err
	}
	mode, err := tx.Forgetting(ev.ObjectID)
	if err != nil {
		return nil, ForgetNone, err
	}
	if mode != ForgetNone {
		// An inquiry's parts are stored with this event (Record.Parts),
		// after this: those of a forgotten inquiry are forgotten now,
		// however late the inquiry lists them.
		for _, p := range ev.Parts {
			r, err := tx.Forget(p, mode)
			if err != nil {
				return nil, ForgetNone, err
			}
			rose = append(rose, r...)
		}
	}
	if err := ForgetStored(tx, rose); err != nil {
		return nil, ForgetNone, err
	}
	for _, f := range rose {
		if f.ID == ev.ObjectID {
			continue // its fold follows
		}
		c, err := Refold(tx, f.ID, e.policy)
		if err != nil {
			return nil, ForgetNone, err
		}
		if c != nil {
			c.EventID, c.At = ev.ID, at
			if err := tx.AppendChange(c); err != nil {
				return nil, ForgetNone, err
			}
			*also = append(*also, *c)
		}
	}
	return rose, mode, nil
}

// forgetLearned records the owners ev names and forgets what a forgotten
// owner or ev's own redaction makes forgotten; it returns the objects
// whose forget mode rose.
func (e *Engine) forgetLearned(tx Tx, ev *Event) ([]Forgotten, error) {
	unknown, err := tx.AddLinks(ev.OwnerLinks())
	if err != nil {
		return nil, err
	}
	var rose []Forgotten
	for _, l := range unknown {
		// A link learned late covers what was stored early: an object
		// that belongs to a forgotten owner is forgotten as well. (A link
		// stored before was followed when its owner was forgotten.)
		mode, err := tx.Forgetting(l.Owner)
		if err != nil {
			return nil, err
		}
		if mode != ForgetNone {
			r, err := tx.Forget(l.Object, mode)
			if err != nil {
				return nil, err
			}
			rose = append(rose, r...)
		}
	}
	if ev.SubjectRedacted && ev.ObjectID != "" {
		r, err := tx.Forget(ev.ObjectID, RedactionMode(ev))
		if err != nil {
			return nil, err
		}
		rose = append(rose, r...)
	}
	return rose, nil
}

// RedactionMode is how much a redaction of ev's object forgets: Persona
// keeps an inquiry's reference-id when only the inquiry is redacted, and
// nulls it when the account (or any other owner) is.
func RedactionMode(ev *Event) Forget {
	if ev.ObjectType == "inquiry" {
		return ForgetKeepReference
	}
	return ForgetAll
}

// ForgetStored scrubs, as their modes say, the stored bodies of the
// forgotten objects and every dead letter that names one of them. Store
// implementations' maintenance (a rebuild, a migration) uses it too.
func ForgetStored(tx Tx, forgotten []Forgotten) error {
	var keep, all []string
	for _, f := range forgotten {
		if f.Mode == ForgetAll {
			all = append(all, f.ID)
		} else {
			keep = append(keep, f.ID)
		}
	}
	for _, g := range []struct {
		ids  []string
		mode Forget
	}{{keep, ForgetKeepReference}, {all, ForgetAll}} {
		if len(g.ids) == 0 {
			continue
		}
		if err := tx.ReplaceBodies(g.ids, scrubFor(g.mode)); err != nil {
			return err
		}
		if err := tx.ReplaceDeadLetters(g.ids, ScrubDeadLetter); err != nil {
			return err
		}
	}
	return nil
}

// ScrubDeadLetter scrubs a dead letter with ScrubAll, or replaces it with
// JSON null when it is not JSON at all.
func ScrubDeadLetter(body []byte) ([]byte, error) {
	out, err := ScrubAll(body)
	if err != nil {
		return []byte("null"), nil
	}
	return out, nil
}

// Refold folds a stored inquiry again from its log with p (after its
// bodies were scrubbed, or a conflict was kept), saves the projection when it differs, and returns
// the change it makes, if any, for the caller to append to the feed. An id
// with no projection is no inquiry: nil, nil. Errors: the store's, and an
// error naming a stored event that no longer parses.
func Refold(tx Tx, id string, p Policy) (*Change, error) {
	before, err := tx.Inquiry(id)
	if err != nil || before == nil {
		return nil, err
	}
	events, err := history(tx, id)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	after, _ := Fold(id, events, p)
	if sameProjection(before, after) {
		return nil, nil
	}
	if err := tx.SaveInquiry(after); err != nil {
		return nil, err
	}
	return changeBetween(before, after), nil
}

func sameProjection(a, b *Inquiry) bool {
	ja, erra := a.MarshalJSON()
	jb, errb := b.MarshalJSON()
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

// refold folds an inquiry's whole stored log with ev.
func (e *Engine) refold(tx Tx, id string, ev *Event) (*Inquiry, Step, error) {
	events, err := history(tx, id)
	if err != nil {
		return nil, Step{}, err
	}
	after, steps := Fold(id, append(events, ev), e.policy)
	for _, s := range steps {
		if s.EventID == ev.ID {
			return after, s, nil
		}
	}
	return nil, Step{}, fmt.Errorf("engine: event %s lost in re-fold", ev.ID)
}

// addedAnomalies returns the anomalies after has that before had not, by
// event and kind: a re-fold recomputes them all, and only the new ones are
// what this delivery added.
func addedAnomalies(before, after *Inquiry) []Anomaly {
	type key struct{ event, kind string }
	had := map[key]int{}
	if before != nil {
		for _, a := range before.Anomalies {
			had[key{a.EventID, a.Kind}]++
		}
	}
	var added []Anomaly
	for _, a := range after.Anomalies {
		if k := (key{a.EventID, a.Kind}); had[k] > 0 {
			had[k]--
			continue
		}
		added = append(added, a)
	}
	return added
}

// fold computes the inquiry after ev. In-order arrival applies one step on
// top of the stored projection; a late event re-folds the whole history.
func (e *Engine) fold(tx Tx, before *Inquiry, ev *Event) (*Inquiry, Step, error) {
	if before == nil {
		after := &Inquiry{ID: ev.ObjectID}
		return after, after.Apply(ev, e.policy), nil
	}
	if before.After(ev) {
		after := before.Clone()
		return after, after.Apply(ev, e.policy), nil
	}
	return e.refold(tx, ev.ObjectID, ev)
}

// history returns the parsed events of an inquiry's stored log: from the
// store's cache when tx is a HistoryTx, parsed from InquiryEvents
// otherwise.
func history(tx Tx, id string) ([]*Event, error) {
	if h, ok := tx.(HistoryTx); ok {
		return h.InquiryHistory(id)
	}
	recs, err := tx.InquiryEvents(id)
	if err != nil {
		return nil, err
	}
	return ParseRecords(recs)
}

// FoldRecords folds an inquiry's stored records with p, as the engine
// does: each body parsed, each record's Conflicted noted. Errors: one
// naming a stored event that no longer parses.
func FoldRecords(inquiryID string, recs []Record, p Policy) (*Inquiry, []Step, error) {
	events, err := ParseRecords(recs)
	if err != nil {
		return nil, nil, err
	}
	inq, steps := Fold(inquiryID, events, p)
	return inq, steps, nil
}

// ParseRecords parses stored records back into events, each with its
// record's Conflicted, as a re-fold does. Errors: one naming a stored
// event that no longer parses.
func ParseRecords(recs []Record) ([]*Event, error) {
	events := make([]*Event, 0, len(recs)+1)
	for i := range recs {
		ev, err := Parse(recs[i].Body)
		if err != nil {
			return nil, fmt.Errorf("engine: stored event %s no longer parses: %w", recs[i].EventID, err)
		}
		ev.Conflicted = recs[i].Conflicted
		events = append(events, ev)
	}
	return events, nil
}

// changeBetween returns the change from before to after, or nil when the
// status, decision and redacted flag are all the same.
func changeBetween(before, after *Inquiry) *Change {
	var b Inquiry
	if before != nil {
		b = *before
	}
	if b.Status == after.Status && b.Decision == after.Decision && b.Redacted == after.Redacted {
		return nil
	}
	return &Change{
		InquiryID: after.ID, FromStatus: b.Status, ToStatus: after.Status,
		Decision: after.Decision, Redacted: after.Redacted,
	}
}

// Subscribe registers fn to receive every committed change exactly once,
// after it is durable. Changes from concurrent ingests may arrive out of
// Seq order; fn must not block. The returned func cancels the subscription.
func (e *Engine) Subscribe(fn func(Change)) (cancel func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextSub
	e.nextSub++
	e.subs[id] = fn
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.subs, id)
	}
}

// Changed returns a channel that is closed when the next change commits.
// Long polls take it before reading, then wait on it.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

func (e *Engine) publish(c Change) {
	e.mu.Lock()
	subs := make([]func(Change), 0, len(e.subs))
	for _, fn := range e.subs {
		subs = append(subs, fn)
	}
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
	for _, fn := range subs {
		fn(c)
	}
}

// Ping checks that the store accepts writes, by committing an empty unit.
func (e *Engine) Ping(ctx context.Context) error {
	return e.store.Update(ctx, func(Tx) error { return nil })
}

// Inquiry returns an inquiry's projection, with an AnomalyStatusDrift
// added when a drift of its current status is kept (see CheckStatus).
// Errors: one matching ErrNotFound, or ErrUnavailable.
func (e *Engine) Inquiry(ctx context.Context, id string) (*Inquiry, error) {
	inq, err := e.store.GetInquiry(ctx, id)
	if err != nil {
		return nil, err
	}
	page := []*Inquiry{inq}
	if err := e.showDrifts(ctx, page); err != nil {
		return nil, err
	}
	return page[0], nil
}

// Entry is one event of an inquiry's history with what the fold made of it.
type Entry struct {
	Record
	Status Status // the status the event asked for ("" if none)
	Step   Step
}

// History returns an inquiry's events in fold order, each with the outcome
// the fold of the whole log gives it (which, for a late event, may differ
// from the outcome it was first acknowledged with). Errors: ErrNotFound.
func (e *Engine) History(ctx context.Context, id string) ([]Entry, error) {
	recs, err := e.store.Events(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("inquiry %s: %w", quoteShort(id), ErrNotFound)
	}
	events, err := ParseRecords(recs)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]int, len(recs))
	for i, r := range recs {
		byID[r.EventID] = i
	}
	_, steps := Fold(id, events, e.policy)
	entries := make([]Entry, len(steps))
	for i, s := range steps {
		j := byID[s.EventID]
		to, _ := target(events[j])
		entries[i] = Entry{Record: recs[j], Status: to, Step: s}
		// The body's created-at, at the precision Persona sent it (a
		// store may keep the column coarser).
		entries[i].CreatedAt = events[j].CreatedAt
	}
	return entries, nil
}

// Inquiries lists projections; see Reader.Inquiries, which validates q.
// Each has an AnomalyStatusDrift added as Inquiry adds it. Errors:
// ErrInvalid, ErrUnavailable.
func (e *Engine) Inquiries(ctx context.Context, q Query) ([]*Inquiry, string, error) {
	page, next, err := e.store.Inquiries(ctx, q)
	if err != nil {
		return nil, "", err
	}
	if err := e.showDrifts(ctx, page); err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// Changes returns at most limit changes after the cursor seq.
func (e *Engine) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	return e.store.Changes(ctx, after, limit)
}

// maxIDCandidates bounds how many id-like words of a dead letter are
// looked up.
const maxIDCandidates = 512

// namesForgotten reports whether a body that did not parse names, anywhere
// in its bytes, the id of an object whose data is forgotten: each of its
// IDWords is looked up. A body with more than maxIDCandidates such words
// is taken to name one (it is scrubbed: failing safe).
func namesForgotten(tx Tx, body []byte) (bool, error) {
	seen := map[string]bool{}
	for _, w := range IDWords(body) {
		if seen[w] {
			continue
		}
		if seen[w] = true; len(seen) > maxIDCandidates {
			return true, nil
		}
		mode, err := tx.Forgetting(w)
		if err != nil || mode != ForgetNone {
			return mode != ForgetNone, err
		}
	}
	return false, nil
}

// IDWords returns the words of body that look like Persona ids: runs of
// letters, digits and underscores, at least 6 bytes long, with an
// underscore after the first byte ("inq_…", "act_…"). A dead letter names
// an object when one of its IDWords is the object's id.
func IDWords(body []byte) []string {
	var words []string
	isWord := func(c byte) bool {
		return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i < len(body); {
		if !isWord(body[i]) {
			i++
			continue
		}
		j := i
		for j < len(body) && isWord(body[j]) {
			j++
		}
		if w := body[i:j]; len(w) >= 6 && bytes.IndexByte(w[1:], '_') >= 0 {
			words = append(words, string(w))
		}
		i = j
	}
	return words
}
