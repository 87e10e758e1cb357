package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/persona"
	"github.com/personad/personad/internal/reconcile"
)

// now is the tests' clock: every inquiry below went quiet hours before.
var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// ev is one event of an inquiry's history: its webhook body.
type ev struct {
	id, name, status string
	at               time.Time
}

// history returns the events of inquiry inq moving through statuses, one
// minute apart from start.
func history(inq string, start time.Time, statuses ...string) []ev {
	names := map[string]string{"created": "inquiry.created", "pending": "inquiry.started", "completed": "inquiry.completed",
		"failed": "inquiry.failed", "expired": "inquiry.expired", "approved": "inquiry.approved", "declined": "inquiry.declined",
		"needs_review": "inquiry.marked-for-review"}
	var out []ev
	for i, s := range statuses {
		out = append(out, ev{id: fmt.Sprintf("evt_%s_%d", strings.TrimPrefix(inq, "inq_"), i), name: names[s], status: s, at: start.Add(time.Duration(i) * time.Minute)})
	}
	return out
}

// item renders e as an Events API item about inquiry inq (a webhook body's
// "data").
func (e ev) item(inq string) json.RawMessage {
	b, err := json.Marshal(map[string]any{
		"type": "event", "id": e.id,
		"attributes": map[string]any{
			"name": e.name, "created-at": e.at.UTC().Format("2006-01-02T15:04:05.000Z"),
			"payload": map[string]any{"data": map[string]any{"type": "inquiry", "id": inq,
				"attributes": map[string]any{"status": e.status, "created-at": "2026-05-01T00:00:00.000Z"}}},
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

func (e ev) body(inq string) []byte {
	return append(append([]byte(`{"data":`), e.item(inq)...), '}')
}

// fakeAPI is Persona's REST API over a fixed set of inquiries, counting
// the calls. Pages hold pageSize items.
type fakeAPI struct {
	mu       sync.Mutex
	pageSize int
	events   map[string][]ev // by inquiry, oldest first
	created  map[string]time.Time
	status   map[string]string // overrides the last event's status
	calls    map[string]int    // "events", "inquiry", "inquiries"
	fail     map[string]error  // by inquiry id, for ListEvents
}

func newFakeAPI(pageSize int) *fakeAPI {
	return &fakeAPI{pageSize: pageSize, events: map[string][]ev{}, created: map[string]time.Time{},
		status: map[string]string{}, calls: map[string]int{}, fail: map[string]error{}}
}

func (f *fakeAPI) add(inq string, evs []ev) {
	f.events[inq] = evs
	f.created[inq] = evs[0].at
}

func (f *fakeAPI) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[kind]
}

// page returns the items after cursor after (an id), newest first.
func page[T any](items []T, id func(T) string, after string, size int) ([]T, string) {
	start := 0
	if after != "" {
		start = slices.IndexFunc(items, func(t T) bool { return id(t) == after }) + 1
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = id(items[end-1])
	}
	return items[start:end], next
}

func (f *fakeAPI) ListEvents(_ context.Context, objectID, after string) (persona.EventsPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["events"]++
	if err := f.fail[objectID]; err != nil {
		return persona.EventsPage{}, err
	}
	evs := slices.Clone(f.events[objectID])
	slices.Reverse(evs)
	got, next := page(evs, func(e ev) string { return e.id }, after, f.pageSize)
	p := persona.EventsPage{Next: next}
	for _, e := range got {
		p.Events = append(p.Events, persona.Event{ID: e.id, Name: e.name, Raw: e.item(objectID)})
	}
	return p, nil
}

func (f *fakeAPI) statusOf(id string) string {
	if s, ok := f.status[id]; ok {
		return s
	}
	evs := f.events[id]
	return evs[len(evs)-1].status
}

func (f *fakeAPI) GetInquiry(_ context.Context, id string) (string, json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["inquiry"]++
	if _, ok := f.events[id]; !ok {
		return "", nil, &persona.Error{Method: "GET", Path: "/api/v1/inquiries/" + id, StatusCode: 404}
	}
	return f.statusOf(id), json.RawMessage(`{}`), nil
}

func (f *fakeAPI) ListInquiries(_ context.Context, since time.Time, after string) (persona.InquiriesPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["inquiries"]++
	var ids []string
	for id, c := range f.created {
		if !c.Before(since) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return f.created[b].Compare(f.created[a]) })
	got, next := page(ids, func(s string) string { return s }, after, f.pageSize)
	p := persona.InquiriesPage{Next: next}
	for _, id := range got {
		p.Inquiries = append(p.Inquiries, persona.Inquiry{ID: id, Status: f.statusOf(id), CreatedAt: f.created[id]})
	}
	return p, nil
}

// countingStore counts the store's write units.
type countingStore struct {
	*engine.MemoryStore
	mu      sync.Mutex
	updates int
}

func (s *countingStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	s.mu.Lock()
	s.updates++
	s.mu.Unlock()
	return s.MemoryStore.Update(ctx, fn)
}

func (s *countingStore) writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

type fixture struct {
	api   *fakeAPI
	store *countingStore
	eng   *engine.Engine
	rec   *reconcile.Reconciler
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, api *fakeAPI) *fixture {
	t.Helper()
	st := &countingStore{MemoryStore: engine.NewMemoryStore()}
	eng := engine.New(st, engine.Policy{})
	logs := &bytes.Buffer{}
	rec, err := reconcile.New(reconcile.Config{Engine: eng, API: api, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{api: api, store: st, eng: eng, rec: rec, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// deliver ingests evs of inq as webhooks.
func (f *fixture) deliver(t *testing.T, inq string, evs []ev) {
	t.Helper()
	for _, e := range evs {
		if _, err := f.eng.Ingest(context.Background(), engine.Delivery{Body: e.body(inq), ReceivedAt: e.at}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) status(t *testing.T, inq string) engine.Status {
	t.Helper()
	got, err := f.eng.Inquiry(context.Background(), inq)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

func TestRunRecoversMissingEvents(t *testing.T) {
	start := now.Add(-3 * time.Hour)
	api := newFakeAPI(2)
	full := history("inq_a", start, "created", "pending", "completed", "approved")
	gap := history("inq_b", start, "created", "pending", "completed", "failed", "declined")
	whole := history("inq_c", start, "created", "pending", "expired")
	fresh := history("inq_d", now.Add(-10*time.Minute), "created", "pending")
	decided := history("inq_e", start, "created", "pending", "completed", "approved")
	for id, evs := range map[string][]ev{"inq_a": full, "inq_b": gap, "inq_c": whole, "inq_d": fresh, "inq_e": decided} {
		api.add(id, evs)
	}
	f := newFixture(t, api)
	f.deliver(t, "inq_a", full[:2])                     // the tail was lost
	f.deliver(t, "inq_b", []ev{gap[0], gap[1], gap[3]}) // one in the middle: inq_b sits at failed
	f.deliver(t, "inq_c", whole)                        // nothing lost
	f.deliver(t, "inq_d", fresh[:1])                    // lost too, but not stale yet
	f.deliver(t, "inq_e", decided)                      // decided: not checked
	before := f.store.writes()

	rep, err := f.rec.Run(context.Background(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rep.RecoveredEvents {
		got = append(got, e.EventID)
	}
	want := []string{full[2].id, full[3].id, gap[2].id, gap[4].id}
	if !slices.Equal(got, want) {
		t.Errorf("recovered %v, want %v (oldest first, by inquiry)", got, want)
	}
	if rep.Recovered != 4 || rep.Checked != 3 || len(rep.Drifts) != 0 || !rep.OK() {
		t.Errorf("report = %+v, want 3 checked, 4 recovered, no drift, no error", rep)
	}
	if s := f.status(t, "inq_a"); s != engine.StatusApproved {
		t.Errorf("inq_a status %s, want approved", s)
	}
	if s := f.status(t, "inq_b"); s != engine.StatusDeclined {
		t.Errorf("inq_b status %s, want declined", s)
	}
	if s := f.status(t, "inq_d"); s != engine.StatusCreated {
		t.Errorf("inq_d (not stale) status %s, want created", s)
	}
	if f.store.writes() == before {
		t.Error("no write recorded the recovered events")
	}
	// The recovered events are marked as such; the webhooks' are not.
	for _, rec := range f.store.AllEvents() {
		wantSource := engine.SourceWebhook
		if slices.Contains(want, rec.EventID) {
			wantSource = engine.SourceAPI
		}
		if rec.Source != wantSource {
			t.Errorf("event %s source %q, want %q", rec.EventID, rec.Source, wantSource)
		}
	}
	for _, id := range want {
		if !strings.Contains(f.logs.String(), "level=WARN msg=\"recovered an event no webhook delivered\" event_id="+id) {
			t.Errorf("no WARN line for recovered event %s:\n%s", id, f.logs)
		}
	}

	// A second run finds nothing to do, and writes nothing.
	writes, calls := f.store.writes(), f.api.count("events")
	rep, err = f.rec.Run(context.Background(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 0 || len(rep.Drifts) != 0 || !rep.OK() {
		t.Errorf("second run report = %+v, want nothing recovered", rep)
	}
	if got := f.store.writes(); got != writes {
		t.Errorf("second run made %d writes, want none", got-writes)
	}
	// inq_a and inq_b are decided now: only inq_c is checked, one page.
	if rep.Checked != 1 || f.api.count("events")-calls != 1 {
		t.Errorf("second run checked %d inquiries with %d event pages, want 1 and 1", rep.Checked, f.api.count("events")-calls)
	}
}

func TestRunStopsPagingAtKnownEvents(t *testing.T) {
	api := newFakeAPI(2)
	evs := history("inq_long", now.Add(-5*time.Hour), "created", "pending", "pending", "pending", "pending", "pending", "completed")
	api.add("inq_long", evs)
	f := newFixture(t, api)
	f.deliver(t, "inq_long", evs[:5])
	if _, err := f.rec.Run(context.Background(), reconcile.Options{}); err != nil {
		t.Fatal(err)
	}
	// Newest first: [6 5] holds what is missing, [4 3] only known
	// events; the two older pages are not read.
	if got := api.count("events"); got != 2 {
		t.Errorf("read %d pages of events, want 2", got)
	}
	if s := f.status(t, "inq_long"); s != engine.StatusCompleted {
		t.Errorf("status %s, want completed", s)
	}
}

func TestRunRecordsDrift(t *testing.T) {
	api := newFakeAPI(100)
	evs := history("inq_drift", now.Add(-2*time.Hour), "created", "pending", "completed")
	api.add("inq_drift", evs)
	api.status["inq_drift"] = "approved" // approved in Persona's dashboard; the event is gone
	f := newFixture(t, api)
	f.deliver(t, "inq_drift", evs)

	rep, err := f.rec.Run(context.Background(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Drifts) != 1 || rep.Drifts[0].InquiryID != "inq_drift" || rep.Drifts[0].Status != engine.StatusCompleted || rep.Drifts[0].PersonaStatus != engine.StatusApproved {
		t.Fatalf("drifts = %+v, want inq_drift completed vs approved", rep.Drifts)
	}
	inq, err := f.eng.Inquiry(context.Background(), "inq_drift")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(inq.Anomalies, func(a engine.Anomaly) bool {
		return a.Kind == engine.AnomalyStatusDrift && a.From == engine.StatusCompleted && a.To == engine.StatusApproved
	}) {
		t.Errorf("inquiry anomalies %+v lack the status drift", inq.Anomalies)
	}
	if !strings.Contains(f.logs.String(), `level=WARN msg="inquiry status differs from Persona's after reconciling its events" inquiry_id=inq_drift status=completed persona_status=approved`) {
		t.Errorf("no WARN line for the drift:\n%s", f.logs)
	}
	// Reported again while it lasts, but not written again.
	writes := f.store.writes()
	rep, err = f.rec.Run(context.Background(), reconcile.Options{})
	if err != nil || len(rep.Drifts) != 1 {
		t.Fatalf("second run: %+v, %v", rep.Drifts, err)
	}
	if got := f.store.writes(); got != writes {
		t.Errorf("second run made %d writes for a known drift", got-writes)
	}
}

func TestRunNamedInquiries(t *testing.T) {
	api := newFakeAPI(100)
	evs := history("inq_named", now.Add(-time.Minute), "created", "pending", "completed", "approved")
	api.add("inq_named", evs)
	api.add("inq_other", history("inq_other", now.Add(-3*time.Hour), "created", "pending"))
	f := newFixture(t, api)
	f.deliver(t, "inq_named", evs[:1]) // fresh: a run would not pick it
	f.deliver(t, "inq_other", history("inq_other", now.Add(-3*time.Hour), "created"))

	rep, err := f.rec.Run(context.Background(), reconcile.Options{Inquiries: []string{"inq_named", "inq_named"}, OnlyNamed: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 1 || rep.Recovered != 3 {
		t.Errorf("report = %+v, want 1 checked (named once), 3 recovered", rep)
	}
	if s := f.status(t, "inq_other"); s != engine.StatusCreated {
		t.Errorf("inq_other was reconciled (status %s) though only named ones were asked for", s)
	}
	// A named inquiry Persona does not know is an error of the run.
	rep, err = f.rec.Run(context.Background(), reconcile.Options{Inquiries: []string{"inq_unknown"}, OnlyNamed: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Errors[0].InquiryID != "inq_unknown" {
		t.Errorf("errors = %+v, want one for inq_unknown", rep.Errors)
	}
}

func TestRunErrors(t *testing.T) {
	api := newFakeAPI(100)
	for _, id := range []string{"inq_1", "inq_2", "inq_3"} {
		api.add(id, history(id, now.Add(-2*time.Hour), "created", "pending"))
	}
	f := newFixture(t, api)
	for _, id := range []string{"inq_1", "inq_2", "inq_3"} {
		f.deliver(t, id, history(id, now.Add(-2*time.Hour), "created"))
	}
	api.fail["inq_2"] = &persona.Error{Method: "GET", Path: "/api/v1/events", StatusCode: 500}
	rep, err := f.rec.Run(context.Background(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].InquiryID != "inq_2" || rep.Recovered != 2 {
		t.Errorf("report = %+v, want inq_2 failed and the other two recovered", rep)
	}

	// A refused key ends the run: every other request would fail alike.
	for id := range api.events {
		api.fail[id] = &persona.Error{Method: "GET", Path: "/api/v1/events", StatusCode: 401}
	}
	_, err = f.rec.Run(context.Background(), reconcile.Options{Inquiries: []string{"inq_1", "inq_2", "inq_3"}, OnlyNamed: true})
	if !errors.Is(err, persona.ErrUnauthorized) {
		t.Errorf("run with a refused key = %v, want ErrUnauthorized", err)
	}
}

// memState is a reconcile.State in memory that can fail its saves.
type memState struct {
	mu     sync.Mutex
	values map[string]string
	saves  int
	failAt int // the save that fails (1-based); 0: none
}

func (m *memState) State(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[key]
	return v, ok, nil
}

func (m *memState) SetState(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	if m.saves == m.failAt {
		return errors.New("disk full")
	}
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[key] = value
	return nil
}

func TestBackfillResumes(t *testing.T) {
	api := newFakeAPI(3)
	since := now.Add(-100 * 24 * time.Hour)
	var all []string
	for i := range 10 {
		id := fmt.Sprintf("inq_%02d", i)
		all = append(all, id)
		api.add(id, history(id, since.Add(time.Duration(i)*time.Hour), "created", "pending", "completed", "approved"))
	}
	api.add("inq_old", history("inq_old", since.Add(-time.Hour), "created"))
	f := newFixture(t, api)
	st := &memState{failAt: 2} // the second page's save fails: the run stops there

	rep, err := f.rec.Backfill(context.Background(), st, since, nil)
	if err == nil {
		t.Fatal("backfill whose save failed reported no error")
	}
	if rep.Pages != 1 || rep.Complete {
		t.Errorf("interrupted backfill report: %d pages, complete %v; want 1, false", rep.Pages, rep.Complete)
	}
	listed := api.count("inquiries")

	var progress []int
	rep, err = f.rec.Backfill(context.Background(), st, since, func(p reconcile.BackfillReport) { progress = append(progress, p.Pages) })
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || !rep.Complete || rep.Pages != 4 || rep.Listed != 10 {
		t.Errorf("resumed backfill: %+v; want resumed, complete, 4 pages, 10 listed", rep)
	}
	if !slices.Equal(progress, []int{2, 3, 4}) {
		t.Errorf("progress after pages %v, want [2 3 4]", progress)
	}
	// It continued from page 2 (page 2 is read again: its save failed).
	if got := api.count("inquiries") - listed; got != 3 {
		t.Errorf("resumed run listed %d pages, want 3", got)
	}
	for _, id := range all {
		if s := f.status(t, id); s != engine.StatusApproved {
			t.Errorf("%s status %s, want approved", id, s)
		}
	}
	if _, err := f.eng.Inquiry(context.Background(), "inq_old"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("inquiry created before -since imported: %v", err)
	}
	if got := len(f.store.AllEvents()); got != 40 {
		t.Errorf("%d events stored, want 40 (each once)", got)
	}
	if strings.Contains(f.logs.String(), "no webhook delivered") {
		t.Error("a backfill's imports are logged as lost webhooks")
	}

	// After a complete run, the next one starts over and adds nothing.
	rep, err = f.rec.Backfill(context.Background(), st, since, nil)
	if err != nil || rep.Resumed || rep.Recovered != 0 || rep.Pages != 4 {
		t.Errorf("backfill after a complete one: %+v, %v; want a fresh run recovering 0", rep, err)
	}
}

func TestBackfillBeyondRepair(t *testing.T) {
	api := newFakeAPI(100)
	since := now.Add(-200 * 24 * time.Hour)
	api.add("inq_gone", history("inq_gone", since.Add(time.Hour), "created", "pending", "completed", "approved"))
	api.events["inq_gone"] = nil // the Events API no longer has them
	api.status["inq_gone"] = "approved"
	f := newFixture(t, api)
	rep, err := f.rec.Backfill(context.Background(), &memState{}, since, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.BeyondRepair, []string{"inq_gone"}) || !rep.OK() {
		t.Errorf("report = %+v, want inq_gone beyond repair, no error", rep)
	}
}
