// Package reconcile repairs what webhooks missed, from Persona's REST API.
//
// A Reconciler picks the inquiries whose answer may be stale (undecided,
// and quiet for a while), fetches their events from the Events API,
// ingests those personad does not have through the same Engine.Ingest
// path a webhook takes (marked engine.SourceAPI), then asks Persona for
// each inquiry's current status and records a status drift where the fold
// still disagrees. Backfill imports the inquiries created before personad
// was deployed, page by page, resumably.
//
// Reconciliation only reads when nothing was missed: a run that recovers
// nothing and finds no new drift makes no write.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/persona"
)

// API is the part of Persona's REST API reconciliation reads;
// *persona.Client implements it.
type API interface {
	ListEvents(ctx context.Context, objectID, after string) (persona.EventsPage, error)
	ListInquiries(ctx context.Context, createdAfter time.Time, after string) (persona.InquiriesPage, error)
	GetInquiry(ctx context.Context, id string) (status string, raw json.RawMessage, err error)
}

var _ API = (*persona.Client)(nil)

// Defaults of Config.
const (
	// DefaultStale: an undecided inquiry with no event for this long may
	// have missed one.
	DefaultStale = time.Hour
	// DefaultMaxAge: inquiries quiet for longer are no longer checked
	// every run (Persona keeps webhook events 30 days; an inquiry left
	// undecided longer is named with Options.Inquiries, or backfilled).
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultWorkers is how many inquiries are checked at once; the
	// client's rate limit, not this, bounds the request rate.
	DefaultWorkers = 4
)

// Config configures a Reconciler. Engine and API are required.
type Config struct {
	Engine *engine.Engine
	API    API
	// Logger receives a WARN line per recovered event and per drift, and
	// the errors; discarded when nil.
	Logger *slog.Logger
	// Now reads the clock (time.Now when nil): recovered events are
	// received "now", and staleness is measured from it.
	Now func() time.Time
	// Stale and MaxAge bound the inquiries a run picks: undecided ones
	// whose latest event is older than Stale and not older than MaxAge.
	Stale, MaxAge time.Duration
	// Workers is how many inquiries are checked at once.
	Workers int
	// Observer is told what runs do (metrics); optional.
	Observer Observer
}

// Observer is told what reconciliation does, for metrics. Its methods
// may be called from several goroutines at once.
type Observer interface {
	// Recovered is called for each event ingested from the API.
	Recovered(res engine.Result)
	// Drifted is called for each drift a run records anew.
	Drifted(d engine.Drift)
	// Failed is called for each error a run meets.
	Failed()
	// RunDone is called at the end of each run; ok is false when the run
	// met an error.
	RunDone(rep Report, ok bool)
}

// Options narrow one run.
type Options struct {
	// Inquiries are checked whatever their state, besides the stale ones.
	Inquiries []string `json:"inquiry_ids,omitempty"`
	// OnlyNamed checks Inquiries alone.
	OnlyNamed bool `json:"only_named,omitempty"`
}

// Report says what one run did.
type Report struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Checked counts the inquiries whose events and status were read.
	Checked int `json:"inquiries_checked"`
	// Recovered counts the events ingested from the API: each one a
	// webhook personad never received.
	Recovered       int              `json:"events_recovered"`
	RecoveredEvents []RecoveredEvent `json:"recovered"`
	// Drifts are the inquiries whose status still differs from Persona's
	// after the recovered events were folded.
	Drifts []Drift `json:"drifts"`
	// BeyondRepair are inquiries Persona knows whose events its Events
	// API no longer has (it keeps about 3 months), of which personad
	// never received one: personad has no answer for them.
	BeyondRepair []string `json:"beyond_repair"`
	// Errors are the inquiries a run could not check, and why.
	Errors []Failure `json:"errors"`
}

// RecoveredEvent is one event a run ingested from the API.
type RecoveredEvent struct {
	EventID   string `json:"event_id"`
	Name      string `json:"name"`
	InquiryID string `json:"inquiry_id"`
}

// Drift is an inquiry whose status in personad differs from Persona's.
type Drift struct {
	InquiryID     string        `json:"inquiry_id"`
	Status        engine.Status `json:"status"`         // personad's
	PersonaStatus engine.Status `json:"persona_status"` // Persona's
	CheckedAt     time.Time     `json:"checked_at"`
}

// Failure is an inquiry a run could not check.
type Failure struct {
	InquiryID string `json:"inquiry_id,omitempty"`
	Error     string `json:"error"`
}

// OK reports whether the run met no error.
func (r Report) OK() bool { return len(r.Errors) == 0 }

// ErrBusy is returned by Run when ctx ends while another run holds the
// reconciler.
var ErrBusy = errors.New("reconcile: another run is in progress")

// Reconciler runs reconciliations, one at a time.
type Reconciler struct {
	cfg  Config
	log  *slog.Logger
	turn chan struct{} // holds one token: the right to run
}

// New returns a Reconciler for cfg, with defaults filled in. It returns an
// error without an engine or an API.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Engine == nil || cfg.API == nil {
		return nil, errors.New("reconcile: an engine and a Persona API client are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stale <= 0 {
		cfg.Stale = DefaultStale
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{cfg: cfg, log: log, turn: make(chan struct{}, 1)}
	r.turn <- struct{}{}
	return r, nil
}

// Run checks the stale inquiries and those opts names, and reports what it
// did. An error of one inquiry is in the report, not returned; Run returns
// an error only when it could not pick the inquiries (the store failed),
// when ctx ended (ErrBusy if it ended waiting for another run), or when
// Persona refused the API key (matching persona.ErrUnauthorized), which
// ends the run since every request would fail alike.
func (r *Reconciler) Run(ctx context.Context, opts Options) (Report, error) {
	select {
	case <-r.turn:
	case <-ctx.Done():
		return Report{}, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
	defer func() { r.turn <- struct{}{} }()

	rep := Report{StartedAt: r.cfg.Now()}
	ids, err := r.candidates(ctx, opts, rep.StartedAt)
	if err != nil {
		rep.FinishedAt = r.cfg.Now()
		r.done(&rep, err)
		return rep, err
	}
	err = r.checkAll(ctx, ids, &rep, func(ctx context.Context, id string, part *Report) error {
		return r.checkInquiry(ctx, id, part)
	})
	rep.FinishedAt = r.cfg.Now()
	r.done(&rep, err)
	return rep, err
}

// done logs the end of a run and tells the observer.
func (r *Reconciler) done(rep *Report, err error) {
	// Empty lists, not null, in the JSON report.
	rep.RecoveredEvents = nonNil(rep.RecoveredEvents)
	rep.Drifts = nonNil(rep.Drifts)
	rep.BeyondRepair = nonNil(rep.BeyondRepair)
	rep.Errors = nonNil(rep.Errors)
	ok := err == nil && rep.OK()
	attrs := []any{"inquiries_checked", rep.Checked, "events_recovered", rep.Recovered,
		"drifts", len(rep.Drifts), "errors", len(rep.Errors), "duration", rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond)}
	switch {
	case err != nil:
		r.log.Error("reconcile run failed", append(attrs, "err", err)...)
	case !ok || rep.Recovered > 0 || len(rep.Drifts) > 0:
		r.log.Warn("reconcile run done", attrs...)
	default:
		r.log.Info("reconcile run done", attrs...)
	}
	if r.cfg.Observer != nil {
		if err != nil {
			r.cfg.Observer.Failed()
		}
		r.cfg.Observer.RunDone(*rep, ok)
	}
}

// candidates returns the inquiries a run checks: those opts names, then
// the undecided, unredacted ones whose latest event is in [now-MaxAge,
// now-Stale), from the store's newest-updated-first listing.
func (r *Reconciler) candidates(ctx context.Context, opts Options, now time.Time) ([]string, error) {
	ids := slices.Clone(opts.Inquiries)
	if opts.OnlyNamed {
		return dedup(ids), nil
	}
	staleBefore, oldest := now.Add(-r.cfg.Stale), now.Add(-r.cfg.MaxAge)
	q := engine.Query{Limit: engine.MaxLimit}
	for {
		page, next, err := r.cfg.Engine.Inquiries(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reconcile: listing inquiries: %w", err)
		}
		for _, inq := range page {
			if inq.UpdatedAt.Before(oldest) {
				return dedup(ids), nil
			}
			if inq.UpdatedAt.Before(staleBefore) && !inq.Redacted && !decided(inq.Status) {
				ids = append(ids, inq.ID)
			}
		}
		if next == "" {
			return dedup(ids), nil
		}
		q.Cursor = next
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func decided(s engine.Status) bool { return s == engine.StatusApproved || s == engine.StatusDeclined }

func dedup(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// checkAll runs check for each id on Config.Workers goroutines, each
// filling a report of its own that is merged into rep. It stops early,
// returning the error, when check returns persona.ErrUnauthorized or ctx
// ends.
func (r *Reconciler) checkAll(ctx context.Context, ids []string, rep *Report, check func(context.Context, string, *Report) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan string)
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for range min(r.cfg.Workers, max(len(ids), 1)) {
		wg.Go(func() {
			for id := range work {
				var part Report
				err := check(ctx, id, &part)
				if err != nil && ctx.Err() == nil {
					if errors.Is(err, persona.ErrUnauthorized) {
						cancel(err)
					} else {
						r.failed(&part, id, err)
					}
				}
				mu.Lock()
				merge(rep, &part)
				mu.Unlock()
			}
		})
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	slices.SortStableFunc(rep.RecoveredEvents, func(a, b RecoveredEvent) int { return strings.Compare(a.InquiryID, b.InquiryID) })
	slices.SortFunc(rep.Drifts, func(a, b Drift) int { return strings.Compare(a.InquiryID, b.InquiryID) })
	slices.SortFunc(rep.Errors, func(a, b Failure) int { return strings.Compare(a.InquiryID, b.InquiryID) })
	slices.Sort(rep.BeyondRepair)
	return context.Cause(ctx)
}

func merge(into, part *Report) {
	into.Checked += part.Checked
	into.Recovered += part.Recovered
	into.RecoveredEvents = append(into.RecoveredEvents, part.RecoveredEvents...)
	into.Drifts = append(into.Drifts, part.Drifts...)
	into.Errors = append(into.Errors, part.Errors...)
	into.BeyondRepair = append(into.BeyondRepair, part.BeyondRepair...)
}

// failed records and logs an inquiry that could not be checked.
func (r *Reconciler) failed(rep *Report, id string, err error) {
	rep.Errors = append(rep.Errors, Failure{InquiryID: id, Error: err.Error()})
	r.log.Error("reconcile could not check an inquiry", "inquiry_id", id, "err", err)
	if r.cfg.Observer != nil {
		r.cfg.Observer.Failed()
	}
}

// checkInquiry recovers an inquiry's missing events, then compares its
// status with Persona's current one.
func (r *Reconciler) checkInquiry(ctx context.Context, id string, rep *Report) error {
	if err := r.recoverEvents(ctx, id, false, rep); err != nil {
		return err
	}
	status, _, err := r.cfg.API.GetInquiry(ctx, id)
	if err != nil {
		return fmt.Errorf("reading the inquiry from Persona: %w", err)
	}
	rep.Checked++
	return r.compare(ctx, id, engine.Status(status), rep)
}

// compare records (or clears) the drift between personad's status of id
// and Persona's.
func (r *Reconciler) compare(ctx context.Context, id string, personaStatus engine.Status, rep *Report) error {
	d, wrote, err := r.cfg.Engine.CheckStatus(ctx, id, personaStatus, r.cfg.Now())
	switch {
	case errors.Is(err, engine.ErrNotFound):
		// Persona knows the inquiry, its Events API no longer does
		// (it keeps about 3 months) and no webhook ever reached
		// personad: nothing authentic is left to fold.
		rep.BeyondRepair = append(rep.BeyondRepair, id)
		r.log.Warn("inquiry beyond repair: Persona lists it but has no events of it left, and personad never received one",
			"inquiry_id", id, "persona_status", orNone(personaStatus))
		return nil
	case err != nil:
		return err
	case d == nil:
		return nil
	}
	rep.Drifts = append(rep.Drifts, Drift{InquiryID: d.InquiryID, Status: d.Status, PersonaStatus: d.PersonaStatus, CheckedAt: d.CheckedAt})
	if wrote {
		r.log.Warn("inquiry status differs from Persona's after reconciling its events",
			"inquiry_id", id, "status", orNone(d.Status), "persona_status", orNone(d.PersonaStatus))
		if r.cfg.Observer != nil {
			r.cfg.Observer.Drifted(*d)
		}
	}
	return nil
}

func orNone(s engine.Status) string {
	if s == "" {
		return "(none)"
	}
	return string(s)
}

// recoverEvents ingests the events of inquiry id that Persona's Events API
// has and personad does not. Pages come newest first; paging stops after
// a page that holds only events personad has (what was lost is newer),
// unless all is set (a backfill reads every page). A gap older than a
// whole page of known events is left to a backfill. The missing events
// are ingested oldest first, as Persona would have delivered them.
func (r *Reconciler) recoverEvents(ctx context.Context, id string, all bool, rep *Report) error {
	recs, err := r.cfg.Engine.Store().Events(ctx, id)
	if err != nil {
		return fmt.Errorf("reading its stored events: %w", err)
	}
	known := make(map[string]bool, len(recs))
	for _, rec := range recs {
		known[rec.EventID] = true
	}
	var missing []persona.Event
	for after := ""; ; {
		page, err := r.cfg.API.ListEvents(ctx, id, after)
		if err != nil {
			return fmt.Errorf("listing its events at Persona: %w", err)
		}
		fresh := 0
		for _, ev := range page.Events {
			if known[ev.ID] {
				continue
			}
			known[ev.ID] = true // a page boundary may repeat an event
			missing = append(missing, ev)
			fresh++
		}
		if page.Next == "" || (fresh == 0 && !all) {
			break
		}
		after = page.Next
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := r.ingest(ctx, id, missing[i], !all, rep); err != nil {
			return err
		}
	}
	return nil
}

// ingest stores one event from the API as a webhook delivery of it would
// have been. lost says the event's webhook was lost (a reconciliation
// found it, not a backfill importing history): it is logged as a warning.
func (r *Reconciler) ingest(ctx context.Context, id string, ev persona.Event, lost bool, rep *Report) error {
	body := make([]byte, 0, len(ev.Raw)+10)
	body = append(append(append(body, `{"data":`...), ev.Raw...), '}')
	res, err := r.cfg.Engine.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: r.cfg.Now(), Source: engine.SourceAPI})
	switch {
	case errors.Is(err, engine.ErrMalformed):
		// Kept as a dead letter, as an unreadable webhook is.
		return fmt.Errorf("event %s from the Events API is not one personad can read (kept as a dead letter): %w", ev.ID, err)
	case err != nil:
		return fmt.Errorf("storing event %s: %w", ev.ID, err)
	case res.Duplicate:
		return nil // its webhook arrived meanwhile
	}
	rep.Recovered++
	rep.RecoveredEvents = append(rep.RecoveredEvents, RecoveredEvent{EventID: res.EventID, Name: res.Name, InquiryID: id})
	level, msg := slog.LevelDebug, "imported an event"
	if lost {
		level, msg = slog.LevelWarn, "recovered an event no webhook delivered"
	}
	r.log.Log(ctx, level, msg, "event_id", res.EventID, "name", res.Name, "inquiry_id", id,
		"outcome", res.Outcome, "status", orNone(res.After))
	if r.cfg.Observer != nil {
		r.cfg.Observer.Recovered(res)
	}
	return nil
}
