package engine

import (
	"cmp"
	"slices"
	"time"
)

// Policy holds the decision rules an application chooses.
type Policy struct {
	// AutoDecide applies the seed's recommended workflow locally:
	// completed ⇒ approved and failed ⇒ declined. Status stays Persona's.
	AutoDecide bool
}

// Inquiry is the projection of an inquiry: the fold of its distinct events
// in event-time order. It is what an application reads.
type Inquiry struct {
	ID          string
	Status      Status // "" until an event shows one
	Decision    Status // approved, declined, needs_review or "" (undecided)
	Redacted    bool
	RedactedAt  time.Time // zero unless Redacted
	ReferenceID string
	AccountID   string
	TemplateID  string
	Tags        []string
	CreatedAt   time.Time // the inquiry's own created-at, from its payload
	UpdatedAt   time.Time // created-at of the latest event in fold order
	LastEventID string
	EventCount  int
	Anomalies   []Anomaly
}

// Anomaly explains an event the lifecycle did not simply accept.
type Anomaly struct {
	EventID string
	Kind    string // one of the Anomaly* constants
	From    Status
	To      Status
}

// Step says what folding one event did.
type Step struct {
	EventID string
	Outcome Outcome
	From    Status   // status before the event
	To      Status   // status after the event
	Via     []Status // for OutcomeInferred: statuses passed through unseen
}

// Clone returns a deep copy that can be changed without touching inq.
func (inq *Inquiry) Clone() *Inquiry {
	c := *inq
	c.Tags = slices.Clone(inq.Tags)
	c.Anomalies = slices.Clone(inq.Anomalies)
	return &c
}

// After reports whether ev sorts after every event already folded into
// inq, so that applying it on top gives the same projection as a re-fold.
// Events at the same instant as the latest are treated as late: the
// tie-break needs the whole history.
func (inq *Inquiry) After(ev *Event) bool {
	return inq.EventCount == 0 || ev.CreatedAt.After(inq.UpdatedAt)
}

// target is the status an event asks for: its payload status, else the
// status its name implies. named reports whether personad knows the name.
func target(ev *Event) (to Status, named bool) {
	implied, named := impliedStatus(ev.Name)
	if ev.Inquiry.Status != "" {
		return ev.Inquiry.Status, named
	}
	return implied, named
}

// compareEvents orders events for folding: by created-at, then by the
// lifecycle rank of the target status, then by event id.
func compareEvents(a, b *Event) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	ta, _ := target(a)
	tb, _ := target(b)
	if c := cmp.Compare(ta.rank(), tb.rank()); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// Fold computes an inquiry's projection from its events, in any order and
// with any duplicates (by event id, the first one given counts). Steps come
// back in fold order, one per distinct event.
func Fold(inquiryID string, events []*Event, p Policy) (*Inquiry, []Step) {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, compareEvents)
	sorted = slices.CompactFunc(sorted, func(a, b *Event) bool { return a.ID == b.ID })
	inq := &Inquiry{ID: inquiryID}
	steps := make([]Step, 0, len(sorted))
	for _, ev := range sorted {
		steps = append(steps, inq.Apply(ev, p))
	}
	return inq, steps
}

// Apply folds one more event into inq, which must sort after every event
// already folded (see After; Fold takes care of order). It is the one step
// function both the incremental path and a full re-fold use.
func (inq *Inquiry) Apply(ev *Event, p Policy) Step {
	from := inq.Status
	step := Step{EventID: ev.ID, From: from, To: from}
	first := inq.EventCount == 0
	inq.EventCount++
	inq.UpdatedAt = ev.CreatedAt
	inq.LastEventID = ev.ID
	snap := &ev.Inquiry
	if !snap.RedactedAt.IsZero() || ev.Name == EventRedacted {
		inq.redact(ev)
	}
	if ev.Conflicted {
		inq.anomaly(ev.ID, AnomalyConflictingRedelivery, "", "")
	}

	to, named := target(ev)
	switch {
	case !named:
		step.Outcome = OutcomeUnknown
		inq.anomaly(ev.ID, AnomalyUnknownEvent, from, to)
		return inq.finish(step, p)
	case to != "" && !to.Known():
		step.Outcome = OutcomeUnknown
		inq.anomaly(ev.ID, AnomalyUnknownStatus, from, to)
		return inq.finish(step, p)
	}
	inq.absorb(ev)
	if implied, _ := impliedStatus(ev.Name); implied != "" && snap.Status != "" && implied != snap.Status {
		inq.anomaly(ev.ID, AnomalyStatusMismatch, implied, snap.Status)
	}
	switch {
	case to == "" || to == from:
		step.Outcome = OutcomeUnchanged
	case first || from == "":
		step.Outcome = OutcomeApplied
	default:
		if _, ok := Transition(from, to); ok {
			step.Outcome = OutcomeApplied
			if isDecided(from) && isDecided(to) {
				inq.anomaly(ev.ID, AnomalyRedecision, from, to)
			}
		} else if via, ok := Path(from, to); ok {
			step.Outcome = OutcomeInferred
			step.Via = via
		} else {
			step.Outcome = OutcomeRejected
			inq.anomaly(ev.ID, AnomalyRejected, from, to)
			return inq.finish(step, p)
		}
	}
	if to != "" {
		inq.Status = to
	}
	step.To = inq.Status
	return inq.finish(step, p)
}

func isDecided(s Status) bool { return s == StatusApproved || s == StatusDeclined }

// absorb copies the snapshot attributes an event carries. Later events in
// fold order win; absent attributes keep what earlier events said, except
// that a redaction event's snapshot is taken as Persona's word on
// reference-id even when it nulls it (a cascading account redaction).
func (inq *Inquiry) absorb(ev *Event) {
	snap := &ev.Inquiry
	if snap.ReferenceID != "" || ev.Name == EventRedacted {
		inq.ReferenceID = snap.ReferenceID
	}
	if snap.AccountID != "" {
		inq.AccountID = snap.AccountID
	}
	if snap.TemplateID != "" {
		inq.TemplateID = snap.TemplateID
	}
	if snap.Tags != nil && !inq.Redacted {
		inq.Tags = snap.Tags
	}
	if inq.CreatedAt.IsZero() || (!snap.CreatedAt.IsZero() && snap.CreatedAt.Before(inq.CreatedAt)) {
		inq.CreatedAt = snap.CreatedAt
	}
}

// redact marks the inquiry redacted. It never reverts, and RedactedAt is the
// earliest redaction time seen, so the result is the same in any order.
func (inq *Inquiry) redact(ev *Event) {
	at := ev.Inquiry.RedactedAt
	if at.IsZero() {
		at = ev.CreatedAt
	}
	if !inq.Redacted || at.Before(inq.RedactedAt) {
		inq.RedactedAt = at
	}
	inq.Redacted = true
	inq.Tags = []string{} // tags are PII; Persona empties them on redaction
}

func (inq *Inquiry) anomaly(eventID, kind string, from, to Status) {
	inq.Anomalies = append(inq.Anomalies, Anomaly{EventID: eventID, Kind: kind, From: from, To: to})
}

func (inq *Inquiry) finish(step Step, p Policy) Step {
	inq.Decision = decide(inq.Status, p)
	return step
}

// decide maps a status to the decision an application acts on.
func decide(s Status, p Policy) Status {
	switch s {
	case StatusApproved, StatusDeclined, StatusNeedsReview:
		return s
	case StatusCompleted:
		if p.AutoDecide {
			return StatusApproved
		}
	case StatusFailed:
		if p.AutoDecide {
			return StatusDeclined
		}
	}
	return ""
}
