package engine

// Status is an inquiry status as Persona reports it. The empty Status means
// "no status known yet".
type Status string

// The eight inquiry statuses of Persona's lifecycle (reference section 4).
const (
	StatusCreated     Status = "created"
	StatusPending     Status = "pending"
	StatusCompleted   Status = "completed"
	StatusFailed      Status = "failed"
	StatusExpired     Status = "expired"
	StatusNeedsReview Status = "needs_review"
	StatusApproved    Status = "approved"
	StatusDeclined    Status = "declined"
)

// Statuses lists every status personad knows, in lifecycle order.
var Statuses = []Status{
	StatusCreated, StatusPending, StatusCompleted, StatusFailed,
	StatusExpired, StatusNeedsReview, StatusApproved, StatusDeclined,
}

// Known reports whether s is one of the eight statuses.
func (s Status) Known() bool { return s.index() >= 0 }

func (s Status) index() int {
	switch s {
	case StatusCreated:
		return 0
	case StatusPending:
		return 1
	case StatusCompleted:
		return 2
	case StatusFailed:
		return 3
	case StatusExpired:
		return 4
	case StatusNeedsReview:
		return 5
	case StatusApproved:
		return 6
	case StatusDeclined:
		return 7
	}
	return -1
}

// rank orders statuses that share an event time: created < pending <
// completed = failed = expired < needs_review < approved = declined. Events
// with no known target status rank lowest.
func (s Status) rank() int {
	switch s {
	case StatusCreated:
		return 1
	case StatusPending:
		return 2
	case StatusCompleted, StatusFailed, StatusExpired:
		return 3
	case StatusNeedsReview:
		return 4
	case StatusApproved, StatusDeclined:
		return 5
	}
	return 0
}

// normalizeStatus maps the spellings Persona's docs use for a status to the
// canonical one ("needs-review" appears in prose, "needs_review" on the wire).
func normalizeStatus(s string) Status {
	if s == "needs-review" || s == "needsReview" {
		return StatusNeedsReview
	}
	return Status(s)
}

// Inquiry event names (reference section 4).
const (
	EventCreated               = "inquiry.created"
	EventStarted               = "inquiry.started"
	EventExpired               = "inquiry.expired"
	EventCompleted             = "inquiry.completed"
	EventFailed                = "inquiry.failed"
	EventMarkedForReview       = "inquiry.marked-for-review"
	EventApproved              = "inquiry.approved"
	EventDeclined              = "inquiry.declined"
	EventTransitioned          = "inquiry.transitioned"
	EventUpdatedTags           = "inquiry.updated-tags"
	EventRedacted              = "inquiry.redacted"
	EventReusablePersonaCreate = "inquiry.reusable-persona-created"
	EventReusablePersonaUsed   = "inquiry.reusable-persona-used"
)

// TriggerResume labels the expired → pending edge: Persona announces no
// event for a resume, the next event simply carries a later status.
const TriggerResume = "resume"

// impliedStatus returns the status an inquiry event name announces, and
// whether the name is one personad knows at all. Known names that announce
// no status (transitioned, updated-tags, redacted, reusable-persona-*) give
// "" and true.
func impliedStatus(name string) (Status, bool) {
	switch name {
	case EventCreated:
		return StatusCreated, true
	case EventStarted:
		return StatusPending, true
	case EventExpired:
		return StatusExpired, true
	case EventCompleted:
		return StatusCompleted, true
	case EventFailed:
		return StatusFailed, true
	case EventMarkedForReview:
		return StatusNeedsReview, true
	case EventApproved:
		return StatusApproved, true
	case EventDeclined:
		return StatusDeclined, true
	case EventTransitioned, EventUpdatedTags, EventRedacted,
		EventReusablePersonaCreate, EventReusablePersonaUsed:
		return "", true
	}
	return "", false
}

// Outcome says what folding an event did to its inquiry.
type Outcome string

// The outcomes of an event.
const (
	// OutcomeApplied: the lifecycle permits current → target directly (the
	// first event of an inquiry is always applied).
	OutcomeApplied Outcome = "applied"
	// OutcomeInferred: the target is reachable only through statuses no event
	// showed; Step.Via records them.
	OutcomeInferred Outcome = "inferred"
	// OutcomeUnchanged: the target equals the current status, or the event
	// carries no status at all.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeRejected: the target is not reachable from the current status;
	// the status stays and an anomaly is recorded.
	OutcomeRejected Outcome = "rejected"
	// OutcomeUnknown: an event name or status value personad does not know,
	// or an event about something other than an inquiry: kept, no effect.
	OutcomeUnknown Outcome = "unknown"
	// OutcomeDeadLetter: an authentic body personad could not read, kept
	// as a dead letter.
	OutcomeDeadLetter Outcome = "dead_letter"
)

// Anomaly kinds recorded on an inquiry's projection.
const (
	AnomalyRejected       = "rejected_transition"
	AnomalyStatusMismatch = "status_mismatch"
	AnomalyUnknownStatus  = "unknown_status"
	AnomalyUnknownEvent   = "unknown_event"
	AnomalyRedecision     = "redecision"
	// AnomalyConflictingRedelivery: the event's id arrived again with
	// another body; the first is the one folded, the other is kept as a
	// Conflict. From and To are empty.
	AnomalyConflictingRedelivery = "conflicting_redelivery"
	// AnomalyStatusDrift: Persona's API reports another status than the
	// projection's (see Drift and Engine.CheckStatus). From is
	// personad's status, To Persona's; EventID is empty. It is not part
	// of the stored projection: Engine.Inquiry and Engine.Inquiries add
	// it.
	AnomalyStatusDrift = "status_drift"
)
