package loadgen

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/personad/personad/engine"
)

// This file is the generator's own model of an inquiry's life: which
// events Persona sends, in which order, and what personad's projection
// must say after each of them. It follows the lifecycle of
// testdata/persona-reference.md section 5 and personad's documented
// semantics (engine/fold.go, engine/status.go), without calling the
// engine:
//
//   - every inquiry event carries the inquiry's status in its payload;
//     updated-tags and reusable-persona events carry the current one and
//     change no status (updated-tags changes the tags), transitioned events
//     carry the current one except on a resume (below), and
//     inquiry.redacted carries the current one and sets the redacted flag;
//   - a resume has no event of its own (engine.TriggerResume): after
//     inquiry.expired, the next event simply carries "pending";
//   - the decision is the status when it is approved, declined or
//     needs_review, else none; with AutoDecide completed ⇒ approved and
//     failed ⇒ declined;
//   - a re-decision (approved ↔ declined) is an ordinary status change;
//   - redaction is a flag that never reverts, keeps the status and empties
//     the tags; it is the last inquiry event the generator sends.
//
// The plan only ever takes transitions the lifecycle permits, so that the
// fold of any subset of an inquiry's events is the state after the latest
// of them (the bench's change-feed check relies on this).

// Probabilities of the plan, per inquiry unless said otherwise.
const (
	pAccount        = 0.6  // an account.created event follows inquiry.created
	pAbandon        = 0.07 // never started: created → expired
	pExpireMidFlow  = 0.12 // expires between steps
	pResume         = 0.5  // of those: resumed by the user
	pFail           = 0.22 // verification attempts exhausted → failed
	pDatabaseStep   = 0.5  // a third step (database check) after the selfie
	pReport         = 0.4  // a watchlist report runs before the outcome
	pReportMatch    = 0.2  // of those: it matches
	pRedecide       = 0.07 // of decided inquiries: a person flips the decision
	pRedecideAgain  = 0.25 // of those: and flips it back
	pReusable       = 0.15 // of approved inquiries: a reusable persona is created
	pReusableUsed   = 0.4  // of those: and used later
	pTags           = 0.25 // tags are changed once or twice
	pRedact         = 0.08 // the inquiry is redacted at the end
	pSecondDocument = 0.3  // of failed inquiries: a second failed document before failing
)

// Flow steps a dynamic flow moves through (previous-step-name /
// next-step-name).
var flowSteps = []string{"start", "verification_government_id", "verification_selfie", "verification_database", "success"}

// Kinds of objects events are about.
const (
	objectInquiry      = "inquiry"
	objectAccount      = "account"
	objectVerification = "verification/government-id"
	objectReport       = "report/watchlist"
)

// planned is one event of an inquiry's plan.
type planned struct {
	name    string
	at      time.Time
	object  string        // objectInquiry, objectAccount, …
	status  engine.Status // the status the event announces; "" carries the current one
	eventID string

	// Filled in by model.
	snap  snapshot // the inquiry as the event's payload shows it
	after State    // the projection after the event (inquiry events)
}

// snapshot is the inquiry at the time of one event: what its payload says.
type snapshot struct {
	status                       engine.Status
	tags, added, removed         []string
	createdAt, updatedAt         time.Time
	startedAt, completedAt       time.Time
	failedAt, expiredAt          time.Time
	markedAt, decidedAt          time.Time
	redactedAt                   time.Time
	prevStep, nextStep           string // "" is null
	sessions                     int    // sessions opened so far (1, or 2 after a resume)
	resumedAt                    time.Time
	sessionOpen                  bool // the latest session is active
	verifications                int  // government-id verifications so far
	lastVerificationAt           time.Time
	verificationPassed, reviewed bool
	redacted                     bool
}

// identity is what stays the same across an inquiry's events.
type identity struct {
	inquiryID, accountID, referenceID string
	template                          int // index in templatePool
	sessionIDs                        [2]string
	verificationIDs                   [2]string
	documentIDs                       [2]string
	reportID, workflowRunID           string
	fileToken                         string // of the account's photo URLs
	person                            person
	behavior                          behavior
	ip                                string
}

// planner builds one inquiry's plan from its own random stream.
type planner struct {
	r    *rand.Rand
	at   time.Time
	plan []planned
}

func (p *planner) chance(prob float64) bool { return p.r.Float64() < prob }

// between returns a whole number of milliseconds in [lo, hi).
func (p *planner) between(lo, hi time.Duration) time.Duration {
	ms := lo.Milliseconds() + p.r.Int64N(max(hi.Milliseconds()-lo.Milliseconds(), 1))
	return time.Duration(ms) * time.Millisecond
}

// add appends an event gap after the previous one.
func (p *planner) add(gap time.Duration, name, object string, status engine.Status) {
	p.at = p.at.Add(max(gap, time.Millisecond))
	p.plan = append(p.plan, planned{name: name, at: p.at, object: object, status: status})
}

func (p *planner) inquiry(gap time.Duration, name string, status engine.Status) {
	p.add(gap, name, objectInquiry, status)
}

// planInquiry returns the events of one inquiry, in created-at order.
func planInquiry(r *rand.Rand, start time.Time) []planned {
	p := &planner{r: r, at: start}
	p.inquiry(0, engine.EventCreated, engine.StatusCreated)
	if p.chance(pAccount) {
		p.add(p.between(time.Second, 20*time.Second), "account.created", objectAccount, "")
	}
	status := engine.StatusCreated
	if p.chance(pAbandon) {
		p.inquiry(p.between(20*time.Minute, 60*time.Minute), engine.EventExpired, engine.StatusExpired)
		status = p.afterExpiry()
	} else {
		status = p.flow()
	}
	status = p.redecide(status)
	if status == engine.StatusApproved && p.chance(pReusable) {
		p.inquiry(p.between(5*time.Second, 2*time.Minute), engine.EventReusablePersonaCreate, "")
		if p.chance(pReusableUsed) {
			p.inquiry(p.between(10*time.Minute, 90*time.Minute), engine.EventReusablePersonaUsed, "")
		}
	}
	if p.chance(pTags) {
		p.retag(1 + p.r.IntN(2))
	}
	if p.chance(pRedact) {
		p.inquiry(p.between(30*time.Minute, 3*time.Hour), engine.EventRedacted, "")
	}
	return p.plan
}

// flow plans a started inquiry up to its outcome and decision, and returns
// the status it ends in.
func (p *planner) flow() engine.Status {
	p.inquiry(p.between(10*time.Second, 3*time.Minute), engine.EventStarted, engine.StatusPending)
	if p.chance(pFail) {
		p.add(p.between(30*time.Second, 2*time.Minute), "verification.failed", objectVerification, "")
		if p.chance(pSecondDocument) {
			p.add(p.between(30*time.Second, 2*time.Minute), "verification.failed", objectVerification, "")
		}
		p.inquiry(p.between(2*time.Second, 20*time.Second), engine.EventFailed, engine.StatusFailed)
		return p.decide(engine.StatusFailed)
	}
	p.add(p.between(30*time.Second, 2*time.Minute), "verification.passed", objectVerification, "")
	p.inquiry(p.between(time.Second, 5*time.Second), engine.EventTransitioned, engine.StatusPending)
	if p.chance(pExpireMidFlow) {
		p.inquiry(p.between(20*time.Minute, 60*time.Minute), engine.EventExpired, engine.StatusExpired)
		if !p.chance(pResume) {
			return p.afterExpiry()
		}
		// The resume: no event of its own; the flow moves on and the
		// next event carries pending again.
		p.inquiry(p.between(2*time.Minute, 30*time.Minute), engine.EventTransitioned, engine.StatusPending)
	}
	if p.chance(pDatabaseStep) {
		p.inquiry(p.between(20*time.Second, 90*time.Second), engine.EventTransitioned, engine.StatusPending)
	}
	if p.chance(pReport) {
		name := "report/watchlist.ready"
		if p.chance(pReportMatch) {
			name = "report/watchlist.matched"
		}
		p.add(p.between(5*time.Second, 30*time.Second), name, objectReport, "")
	}
	p.inquiry(p.between(5*time.Second, 60*time.Second), engine.EventCompleted, engine.StatusCompleted)
	return p.decide(engine.StatusCompleted)
}

// decide plans what happens after completed or failed: a workflow
// decision, a manual review, or nothing.
func (p *planner) decide(outcome engine.Status) engine.Status {
	approve, decline, review := 0.55, 0.08, 0.22 // completed
	if outcome == engine.StatusFailed {
		approve, decline, review = 0, 0.5, 0.15
	}
	switch x := p.r.Float64(); {
	case x < approve:
		return p.decision(p.between(time.Second, 5*time.Second), engine.StatusApproved)
	case x < approve+decline:
		return p.decision(p.between(time.Second, 5*time.Second), engine.StatusDeclined)
	case x < approve+decline+review:
		return p.review(outcome)
	}
	return outcome
}

// afterExpiry plans what may follow an expiry that is not resumed.
func (p *planner) afterExpiry() engine.Status {
	switch x := p.r.Float64(); {
	case x < 0.05:
		return p.review(engine.StatusExpired)
	case x < 0.15:
		return p.decision(p.between(time.Minute, 30*time.Minute), engine.StatusDeclined)
	}
	return engine.StatusExpired
}

// review plans a mark for review and, usually, a person's decision.
func (p *planner) review(from engine.Status) engine.Status {
	p.inquiry(p.between(2*time.Second, 30*time.Second), engine.EventMarkedForReview, engine.StatusNeedsReview)
	approveShare := 0.7
	if from != engine.StatusCompleted {
		approveShare = 0.3
	}
	switch x := p.r.Float64(); {
	case x < 0.95*approveShare:
		return p.decision(p.between(5*time.Minute, 40*time.Minute), engine.StatusApproved)
	case x < 0.95:
		return p.decision(p.between(5*time.Minute, 40*time.Minute), engine.StatusDeclined)
	}
	return engine.StatusNeedsReview
}

func (p *planner) decision(gap time.Duration, s engine.Status) engine.Status {
	name := engine.EventApproved
	if s == engine.StatusDeclined {
		name = engine.EventDeclined
	}
	p.inquiry(gap, name, s)
	return s
}

// redecide plans a person changing a decision, sometimes twice.
func (p *planner) redecide(status engine.Status) engine.Status {
	if (status != engine.StatusApproved && status != engine.StatusDeclined) || !p.chance(pRedecide) {
		return status
	}
	flips := 1
	if p.chance(pRedecideAgain) {
		flips = 2
	}
	for range flips {
		other := engine.StatusApproved
		if status == engine.StatusApproved {
			other = engine.StatusDeclined
		}
		status = p.decision(p.between(10*time.Minute, 2*time.Hour), other)
	}
	return status
}

// tagPool holds the tags an operator puts on inquiries.
var tagPool = []string{"vip", "high-risk", "manual-check", "returning-user", "promo-2025", "eu-resident"}

// retag inserts n inquiry.updated-tags events at random places after the
// first event, each between two planned events.
func (p *planner) retag(n int) {
	for range n {
		i := 1 + p.r.IntN(len(p.plan)) // insert before plan[i], or at the end
		prev := p.plan[i-1].at
		var at time.Time
		if i == len(p.plan) {
			at = prev.Add(p.between(time.Minute, 20*time.Minute))
			p.at = at
		} else {
			gap := p.plan[i].at.Sub(prev)
			if gap < 2*time.Millisecond {
				continue // no room for an event strictly between
			}
			at = prev.Add(max(time.Millisecond, (gap / 2).Truncate(time.Millisecond)))
		}
		p.plan = slices.Insert(p.plan, i, planned{name: engine.EventUpdatedTags, at: at, object: objectInquiry})
	}
}

// model walks a plan in order and fills in each event's snapshot and, for
// inquiry events, the projection personad must show after it. It is the
// ground truth.
func model(plan []planned, r *rand.Rand, autoDecide bool) {
	var s snapshot
	for i := range plan {
		p := &plan[i]
		s.added, s.removed = nil, nil
		switch p.name {
		case engine.EventCreated:
			s.createdAt, s.sessions, s.sessionOpen = p.at, 1, true
			s.prevStep, s.nextStep = "", flowSteps[0]
		case engine.EventStarted:
			s.startedAt = p.at
			s.prevStep, s.nextStep = flowSteps[0], flowSteps[1]
		case engine.EventTransitioned:
			if s.status == engine.StatusExpired { // resumed: a new session
				s.sessions, s.sessionOpen, s.resumedAt = 2, true, p.at
			}
			s.prevStep, s.nextStep = s.nextStep, nextFlowStep(s.nextStep)
		case engine.EventCompleted:
			s.completedAt, s.sessionOpen = p.at, false
			s.prevStep, s.nextStep = s.nextStep, "success"
		case engine.EventFailed:
			s.failedAt, s.sessionOpen = p.at, false
			s.prevStep, s.nextStep = s.nextStep, "fail"
		case engine.EventExpired:
			s.expiredAt, s.sessionOpen = p.at, false
		case engine.EventMarkedForReview:
			s.markedAt, s.reviewed = p.at, true
		case engine.EventApproved, engine.EventDeclined:
			s.decidedAt, s.reviewed = p.at, true
		case engine.EventUpdatedTags:
			s.tags, s.added, s.removed = retagged(s.tags, r)
		case engine.EventRedacted:
			s.redactedAt, s.redacted, s.tags = p.at, true, []string{}
		case "verification.passed", "verification.failed":
			s.verifications = min(s.verifications+1, 2)
			s.lastVerificationAt = p.at
			s.verificationPassed = p.name == "verification.passed"
		}
		if p.object != objectInquiry {
			p.snap = s
			continue
		}
		if p.status != "" {
			s.status = p.status
		}
		s.updatedAt = p.at
		if s.tags == nil {
			s.tags = []string{}
		}
		p.snap = s
		p.after = State{Status: s.status, Decision: decision(s.status, autoDecide), Redacted: s.redacted}
	}
}

// nextFlowStep is the step a dynamic flow moves to from step; a flow
// reaches "success" only by completing.
func nextFlowStep(step string) string {
	i := slices.Index(flowSteps, step)
	return flowSteps[min(i+1, len(flowSteps)-2)]
}

// retagged adds a tag from the pool or removes one, and says which.
func retagged(tags []string, r *rand.Rand) (next, added, removed []string) {
	if len(tags) > 0 && r.IntN(3) == 0 {
		i := r.IntN(len(tags))
		removed = []string{tags[i]}
		return slices.Delete(slices.Clone(tags), i, i+1), []string{}, removed
	}
	t := tagPool[r.IntN(len(tagPool))]
	if slices.Contains(tags, t) {
		return slices.Clone(tags), []string{}, []string{}
	}
	return append(slices.Clone(tags), t), []string{t}, []string{}
}

// decision is the decision personad derives from a status
// (engine/fold.go): the status itself when it is one, else none, unless
// the daemon decides completed and failed inquiries itself.
func decision(s engine.Status, autoDecide bool) engine.Status {
	switch s {
	case engine.StatusApproved, engine.StatusDeclined, engine.StatusNeedsReview:
		return s
	case engine.StatusCompleted:
		if autoDecide {
			return engine.StatusApproved
		}
	case engine.StatusFailed:
		if autoDecide {
			return engine.StatusDeclined
		}
	}
	return ""
}
