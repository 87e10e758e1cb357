package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

// Delivery is one webhook request as received.
type Delivery struct {
	Body         []byte    // raw request body, exactly as received
	ReceivedAt   time.Time // when it arrived (the engine reads no clock)
	AttemptsMade int       // Persona-Webhook-Attempts-Made, 0 when absent
}

// Result reports what one delivery did.
type Result struct {
	EventID   string
	Name      string
	InquiryID string // "" for events about other objects
	Outcome   Outcome
	Duplicate bool   // the event was stored before; nothing changed
	Before    Status // the inquiry's status before the delivery
	After     Status // and after it
	Change    *Change
}

// Ingest stores a delivery exactly once and folds it into its inquiry.
//
// It returns after the event is durable. Errors: a *ParseError (matching
// ErrMalformed) when the body is not a Persona event, in which case the body
// was kept as a dead letter; an error matching ErrUnavailable when the store
// could not commit, in which case nothing was stored and the sender should
// retry.
func (e *Engine) Ingest(ctx context.Context, d Delivery) (Result, error) {
	ev, err := Parse(d.Body)
	if err != nil {
		dl := &DeadLetter{ReceivedAt: d.ReceivedAt, Body: d.Body, SHA256: sha256.Sum256(d.Body), Reason: err.Error()}
		if serr := e.store.Update(ctx, func(tx Tx) error { return tx.AppendDeadLetter(dl) }); serr != nil {
			return Result{}, unavailable(serr)
		}
		return Result{}, err
	}
	// Hash outside the store's unit of work: a group-committing store runs
	// units one after the other, so whatever they do is serial.
	sum := sha256.Sum256(d.Body)
	var res Result
	if err := e.store.Update(ctx, func(tx Tx) error {
		res = Result{}
		return e.apply(tx, ev, d, sum, &res)
	}); err != nil {
		return Result{}, unavailable(err)
	}
	if res.Change != nil {
		e.publish(*res.Change)
	}
	return res, nil
}

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// apply does the work of one delivery inside a store transaction.
func (e *Engine) apply(tx Tx, ev *Event, d Delivery, sum [32]byte, res *Result) error {
	res.EventID, res.Name = ev.ID, ev.Name
	if ev.IsInquiry() {
		res.InquiryID = ev.ObjectID
	}
	outcome, seen, err := tx.RecordDelivery(ev.ID, d.AttemptsMade)
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
	if seen {
		res.Duplicate, res.Outcome = true, outcome
		return nil
	}
	rec := &Record{
		EventID: ev.ID, Name: ev.Name, ObjectType: ev.ObjectType, ObjectID: ev.ObjectID,
		RelatedInquiryID: ev.RelatedInquiryID, CreatedAt: ev.CreatedAt, ReceivedAt: d.ReceivedAt,
		AttemptsMade: d.AttemptsMade, Deliveries: 1, Body: d.Body, SHA256: sum, Outcome: OutcomeUnknown,
	}
	if !ev.IsInquiry() {
		res.Outcome = OutcomeUnknown
		if err := scrubIfRedacted(tx, rec); err != nil {
			return err
		}
		return tx.AppendEvent(rec)
	}

	after, step, err := e.fold(tx, before, ev)
	if err != nil {
		return err
	}
	rec.Outcome, res.Outcome, res.After = step.Outcome, step.Outcome, after.Status
	if after.Redacted {
		// Forget before writing: the new body is stored scrubbed, and
		// so is every body the inquiry already had, its related events'
		// too (they may be stored before the inquiry's first event).
		if rec.Body, err = Scrub(d.Body); err != nil {
			return err
		}
		if before == nil || !before.Redacted {
			if err := tx.ReplaceBodies(ev.ObjectID, Scrub); err != nil {
				return err
			}
		}
	}
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

// scrubIfRedacted scrubs the body of an event about another object (a
// verification, a report, a session) when the inquiry it belongs to is
// redacted already: they hold the same person's data.
// Those that arrived earlier are rewritten by ReplaceBodies at redaction.
func scrubIfRedacted(tx Tx, rec *Record) error {
	if rec.RelatedInquiryID == "" {
		return nil
	}
	inq, err := tx.Inquiry(rec.RelatedInquiryID)
	if err != nil || inq == nil || !inq.Redacted {
		return err
	}
	rec.Body, err = Scrub(rec.Body)
	return err
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
	events, err := e.history(tx.InquiryEvents(ev.ObjectID))
	if err != nil {
		return nil, Step{}, err
	}
	after, steps := Fold(ev.ObjectID, append(events, ev), e.policy)
	for _, s := range steps {
		if s.EventID == ev.ID {
			return after, s, nil
		}
	}
	return nil, Step{}, fmt.Errorf("engine: event %s lost in re-fold", ev.ID)
}

// history parses stored records back into events.
func (e *Engine) history(recs []Record, err error) ([]*Event, error) {
	if err != nil {
		return nil, err
	}
	events := make([]*Event, 0, len(recs)+1)
	for i := range recs {
		ev, err := Parse(recs[i].Body)
		if err != nil {
			return nil, fmt.Errorf("engine: stored event %s no longer parses: %w", recs[i].EventID, err)
		}
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

// Inquiry returns an inquiry's projection, or an error matching ErrNotFound.
func (e *Engine) Inquiry(ctx context.Context, id string) (*Inquiry, error) {
	return e.store.GetInquiry(ctx, id)
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
	events, err := e.history(recs, nil)
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
	}
	return entries, nil
}

// Inquiries lists projections; see Reader.Inquiries, which validates q.
// Errors: ErrInvalid.
func (e *Engine) Inquiries(ctx context.Context, q Query) ([]*Inquiry, string, error) {
	return e.store.Inquiries(ctx, q)
}

// Changes returns at most limit changes after the cursor seq.
func (e *Engine) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	return e.store.Changes(ctx, after, limit)
}
