package loadgen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/personad/personad/engine"
)

// This file scripts whole histories for personad send: the same bodies
// the generator renders, along fixed paths instead of random ones, so
// that a developer can name the event they want.

// step is one event of a scripted path, gap after the previous one.
type step struct {
	lo, hi time.Duration
	name   string
	object string
	status engine.Status
}

func inquiryStep(lo, hi time.Duration, name string, status engine.Status) step {
	return step{lo, hi, name, objectInquiry, status}
}

// scriptedPaths are the histories Example walks, each in created-at order.
// An example name is the first event of that name in the first path that
// has one: its history is the path up to it.
var scriptedPaths = [][]step{
	{ // approved, then kept as a reusable persona, retagged and redacted
		inquiryStep(0, 0, engine.EventCreated, engine.StatusCreated),
		{time.Second, 20 * time.Second, "account.created", objectAccount, ""},
		inquiryStep(10*time.Second, 3*time.Minute, engine.EventStarted, engine.StatusPending),
		{30 * time.Second, 2 * time.Minute, "verification.passed", objectVerification, ""},
		inquiryStep(time.Second, 5*time.Second, engine.EventTransitioned, engine.StatusPending),
		{5 * time.Second, 30 * time.Second, "report/watchlist.ready", objectReport, ""},
		inquiryStep(5*time.Second, 60*time.Second, engine.EventCompleted, engine.StatusCompleted),
		inquiryStep(time.Second, 5*time.Second, engine.EventApproved, engine.StatusApproved),
		inquiryStep(time.Minute, 20*time.Minute, engine.EventUpdatedTags, ""),
		inquiryStep(5*time.Second, 2*time.Minute, engine.EventReusablePersonaCreate, ""),
		inquiryStep(10*time.Minute, 90*time.Minute, engine.EventReusablePersonaUsed, ""),
		inquiryStep(30*time.Minute, 3*time.Hour, engine.EventRedacted, ""),
	},
	{ // a failed document, failed, declined
		inquiryStep(0, 0, engine.EventCreated, engine.StatusCreated),
		inquiryStep(10*time.Second, 3*time.Minute, engine.EventStarted, engine.StatusPending),
		{30 * time.Second, 2 * time.Minute, "verification.failed", objectVerification, ""},
		inquiryStep(2*time.Second, 20*time.Second, engine.EventFailed, engine.StatusFailed),
		inquiryStep(time.Second, 5*time.Second, engine.EventDeclined, engine.StatusDeclined),
	},
	{ // a watchlist match sends it to manual review
		inquiryStep(0, 0, engine.EventCreated, engine.StatusCreated),
		inquiryStep(10*time.Second, 3*time.Minute, engine.EventStarted, engine.StatusPending),
		{30 * time.Second, 2 * time.Minute, "verification.passed", objectVerification, ""},
		inquiryStep(time.Second, 5*time.Second, engine.EventTransitioned, engine.StatusPending),
		{5 * time.Second, 30 * time.Second, "report/watchlist.matched", objectReport, ""},
		inquiryStep(5*time.Second, 60*time.Second, engine.EventCompleted, engine.StatusCompleted),
		inquiryStep(2*time.Second, 30*time.Second, engine.EventMarkedForReview, engine.StatusNeedsReview),
	},
	{ // never started
		inquiryStep(0, 0, engine.EventCreated, engine.StatusCreated),
		inquiryStep(20*time.Minute, 60*time.Minute, engine.EventExpired, engine.StatusExpired),
	},
}

// Examples returns the event names Example knows, in lifecycle order.
func Examples() []string {
	var names []string
	for _, path := range scriptedPaths {
		for _, s := range path {
			if !slices.Contains(names, s.name) {
				names = append(names, s.name)
			}
		}
	}
	return names
}

// ExampleConfig says which made-up inquiry Example renders.
type ExampleConfig struct {
	// Name is the event the history ends with, one of Examples().
	Name string
	// InquiryID, ReferenceID: the inquiry's ids; fresh Persona-style ones
	// when empty.
	InquiryID, ReferenceID string
	// End is the created-at of the last event; the others precede it
	// with fixed gaps, typical of those Persona shows between them.
	End time.Time
	// Seed selects the ids and person; the same ExampleConfig gives
	// the same bodies.
	Seed uint64
	// AutoDecide is the daemon's -auto-decide, for the ground truth.
	AutoDecide bool
}

// Example returns the history of one made-up inquiry up to and including
// the first event named cfg.Name, in created-at order. The events share
// one Inquiry whose Final is the projection personad must show once all
// of them were delivered.
func Example(cfg ExampleConfig) ([]*Event, error) {
	var path []step
	for _, p := range scriptedPaths {
		if i := slices.IndexFunc(p, func(s step) bool { return s.name == cfg.Name }); i >= 0 {
			path = p[:i+1]
			break
		}
	}
	if path == nil {
		return nil, fmt.Errorf("no example event %q: the examples are %v", cfg.Name, Examples())
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6578616d706c65)) // "example"
	inq := &Inquiry{ident: newIdentity(r)}
	if cfg.InquiryID != "" {
		inq.ident.inquiryID = cfg.InquiryID
	}
	if cfg.ReferenceID != "" {
		inq.ident.referenceID = cfg.ReferenceID
	}
	inq.ID = inq.ident.inquiryID
	pl := &planner{r: r, at: cfg.End}
	for _, s := range path {
		// Fixed gaps (the middle of Persona's), not random ones: two
		// histories sent one after the other, ending now, must be created
		// in the order they were sent, or "the newest inquiry of a user"
		// would be the one sent first.
		pl.add(((s.lo + s.hi) / 2).Truncate(time.Millisecond), s.name, s.object, s.status)
	}
	plan := pl.plan
	shift := plan[len(plan)-1].at.Sub(cfg.End)
	for i := range plan {
		plan[i].at = plan[i].at.Add(-shift)
		plan[i].eventID = newID(r, "evt_")
	}
	model(plan, r, cfg.AutoDecide)
	out := make([]*Event, len(plan))
	for i := range plan {
		p := &plan[i]
		ev := &Event{ID: p.eventID, Name: p.name, CreatedAt: p.at, ObjectType: p.object, Inquiry: inq, Step: -1, Body: render(&inq.ident, p)}
		if p.object == objectInquiry {
			ev.Step = inq.Events
		}
		inq.emit(p)
		out[i] = ev
	}
	return out, nil
}
