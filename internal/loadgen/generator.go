// Package loadgen generates a stream of Persona webhook events with
// realistic inquiry histories, for load testing personad, and keeps the
// ground truth of each inquiry: what personad's projection and change feed
// must say once every generated event has been delivered.
//
// The stream is deterministic for a seed and generated lazily, inquiry by
// inquiry: a fixed number of inquiries are in progress at once, their
// events are merged by created-at as Persona would send them, and bodies
// are rendered only when their event comes up. Memory stays bounded by the
// inquiries in progress plus the small ground-truth record of each
// inquiry, so a soak test can run for millions of events.
//
// Bodies are built from personad's fixtures (testdata/events, copied into
// templates/): kebab-case JSON:API envelopes of 2 to 8 KB, about 4 KB on
// average, with full attributes and included objects (template, template
// version, sessions, the latest verification).
package loadgen

import (
	"container/heap"
	"math/rand/v2"
	"time"

	"github.com/personad/personad/engine"
)

// Config says what to generate.
type Config struct {
	// Seed selects the stream: the same Config gives the same events,
	// byte for byte.
	Seed uint64
	// Events stops the stream after this many events; 0 means no limit.
	// Inquiries still in progress at the end are cut short: their ground
	// truth covers the events that were generated.
	Events int
	// Open is how many inquiries are in progress at once (default 200).
	// Their events interleave, as a live stream's do.
	Open int
	// AutoDecide is the policy of the daemon under test (its
	// -auto-decide): completed ⇒ approved and failed ⇒ declined.
	AutoDecide bool
	// Epoch is the created-at of the first inquiry (default Epoch).
	Epoch time.Time
}

// Epoch is the default created-at of the first generated inquiry.
var Epoch = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)

// Body sizes the generator keeps to.
const (
	MinBodySize = 2 << 10
	MaxBodySize = 8 << 10
)

// MaxInquiryEvents bounds the number of inquiry events in one inquiry's
// history (Event.Step < MaxInquiryEvents), so that callers can keep one bit
// per event.
const MaxInquiryEvents = 64

// State is what personad's projection says about an inquiry: the three
// values a change-feed row reports.
type State struct {
	Status   engine.Status // "" before any inquiry event
	Decision engine.Status // approved, declined, needs_review or ""
	Redacted bool
}

// Inquiry is one generated inquiry and its ground truth so far. The
// generator updates it as it emits the inquiry's events; read it once the
// stream has stopped (or between calls to Next, from the same goroutine).
type Inquiry struct {
	ID     string
	Number int // 0 for the first inquiry started, then 1, 2, …
	// Final is the projection personad must show after every emitted
	// inquiry event of this inquiry, whatever the order of delivery.
	Final State
	// Tags are the tags that projection must carry (empty once redacted).
	Tags []string
	// Changes lists the state after each real change the in-order history
	// of the emitted events implies: one per event that changed status,
	// decision or the redacted flag, starting with the first event.
	Changes []State
	// Events counts emitted inquiry events; Others counts emitted events
	// about other objects (account, verification, report) of this inquiry.
	Events, Others int

	ident identity
	plan  []planned
	next  int // index in plan of the next event to emit
	total int // len(plan) when planned
}

// Done reports whether every planned event of the inquiry was emitted.
func (inq *Inquiry) Done() bool { return inq.next == inq.total }

// emit records that p was emitted and updates the ground truth.
func (inq *Inquiry) emit(p *planned) {
	if p.object != objectInquiry {
		inq.Others++
		return
	}
	inq.Events++
	if p.after != inq.Final { // the first event always differs from the zero State
		inq.Changes = append(inq.Changes, p.after)
	}
	inq.Final = p.after
	inq.Tags = p.snap.tags
}

// Event is one generated webhook event.
type Event struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	ObjectType string   // payload.data.type: "inquiry", "account", …
	Inquiry    *Inquiry // the inquiry the event is, or is related to
	// Step is the event's position among its inquiry's inquiry events
	// (0 for inquiry.created); -1 for events about other objects.
	Step int
	Body []byte // compact JSON, as Persona sends it
}

// IsInquiry reports whether the event is about the inquiry itself, and so
// folds into its projection.
func (e *Event) IsInquiry() bool { return e.ObjectType == objectInquiry }

// Generator produces the event stream. It is not safe for concurrent use.
type Generator struct {
	cfg     Config
	open    openInquiries
	started int
	emitted int
	clock   time.Time // created-at of the latest emitted event
}

// New returns a generator for cfg.
func New(cfg Config) *Generator {
	if cfg.Open <= 0 {
		cfg.Open = 200
	}
	if cfg.Epoch.IsZero() {
		cfg.Epoch = Epoch
	}
	return &Generator{cfg: cfg, clock: cfg.Epoch}
}

// Next returns the next event by created-at, or nil once Config.Events
// events were emitted.
func (g *Generator) Next() *Event {
	if g.cfg.Events > 0 && g.emitted >= g.cfg.Events {
		return nil
	}
	for len(g.open) < g.cfg.Open {
		heap.Push(&g.open, g.start())
	}
	inq := g.open[0]
	p := &inq.plan[inq.next]
	ev := &Event{
		ID: p.eventID, Name: p.name, CreatedAt: p.at, ObjectType: p.object, Inquiry: inq, Step: -1,
		Body: render(&inq.ident, p),
	}
	if p.object == objectInquiry {
		ev.Step = inq.Events
	}
	inq.emit(p)
	inq.next++
	if inq.Done() {
		heap.Pop(&g.open)
		inq.plan, inq.ident = nil, identity{} // the ground truth stays, the rest goes
	} else {
		heap.Fix(&g.open, 0)
	}
	g.emitted++
	g.clock = p.at
	return ev
}

// start plans the next inquiry, beginning a few seconds after the latest
// emitted event so that the stream stays in created-at order.
func (g *Generator) start() *Inquiry {
	n := g.started
	g.started++
	r := rand.New(rand.NewPCG(g.cfg.Seed, uint64(n)))
	inq := &Inquiry{Number: n, ident: newIdentity(r)}
	inq.ID = inq.ident.inquiryID
	begin := g.clock.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
	inq.plan = planInquiry(r, begin)
	inq.total = len(inq.plan)
	model(inq.plan, r, g.cfg.AutoDecide)
	for i := range inq.plan {
		inq.plan[i].eventID = newID(r, "evt_")
	}
	return inq
}

// openInquiries is a min-heap of the inquiries in progress by the
// created-at of their next event (then by number, for determinism).
type openInquiries []*Inquiry

func (h openInquiries) Len() int { return len(h) }
func (h openInquiries) Less(i, j int) bool {
	a, b := h[i].plan[h[i].next].at, h[j].plan[h[j].next].at
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].Number < h[j].Number
}
func (h openInquiries) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *openInquiries) Push(x any)   { *h = append(*h, x.(*Inquiry)) }
func (h *openInquiries) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID returns a Persona-style id: a prefix and 24 base-62 characters.
func newID(r *rand.Rand, prefix string) string {
	b := make([]byte, len(prefix)+24)
	copy(b, prefix)
	for i := len(prefix); i < len(b); i++ {
		b[i] = base62[r.IntN(len(base62))]
	}
	return string(b)
}
