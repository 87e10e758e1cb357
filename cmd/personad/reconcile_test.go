package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/internal/persona/personatest"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/store"
)

const testPersonaKey = "persona_sandbox_e2e_key"

// lossyHistory is a generated set of inquiries and which of their webhooks
// are "lost": never delivered to personad, but in Persona's Events API.
type lossyHistory struct {
	events []*loadgen.Event
	lost   map[string]bool // event ids
}

// makeLossyHistory generates n events that all happened between 10 days
// and 2 hours ago, and loses, for every third inquiry, its inquiry events
// from its first decision (or redaction, or a random point) on, and for
// every other of those one event before that too.
func makeLossyHistory(t *testing.T, n int) lossyHistory {
	t.Helper()
	gen := loadgen.New(loadgen.Config{Seed: 14, Events: n, Open: 20, Epoch: time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Millisecond)})
	h := lossyHistory{lost: map[string]bool{}}
	byInquiry := map[*loadgen.Inquiry][]*loadgen.Event{}
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		h.events = append(h.events, ev)
		if ev.IsInquiry() {
			byInquiry[ev.Inquiry] = append(byInquiry[ev.Inquiry], ev)
		}
	}
	if last := h.events[len(h.events)-1].CreatedAt; time.Since(last) < 2*time.Hour {
		t.Fatalf("the generated history runs until %v: not stale yet", last)
	}
	rng := rand.New(rand.NewPCG(14, 1))
	for inq, evs := range byInquiry {
		if inq.Number%3 != 0 || len(evs) < 2 {
			continue
		}
		cut := 1 + rng.IntN(len(evs)-1)
		for i, ev := range evs {
			// What is left must be undecided and unredacted: a run
			// checks only those.
			parsed, err := engine.Parse(ev.Body)
			if err != nil {
				t.Fatal(err)
			}
			if s := parsed.Inquiry.Status; s == engine.StatusApproved || s == engine.StatusDeclined || parsed.SubjectRedacted {
				cut = min(cut, max(i, 1))
				break
			}
		}
		for _, ev := range evs[cut:] {
			h.lost[ev.ID] = true
		}
		if inq.Number%2 == 0 && cut > 2 {
			h.lost[evs[1+rng.IntN(cut-2)].ID] = true
		}
	}
	if len(h.lost) == 0 {
		t.Fatal("no event lost")
	}
	return h
}

// fakePersona starts the fake API holding every event of evs.
func fakePersona(t *testing.T, opts personatest.Options, evs []*loadgen.Event) *personatest.Server {
	t.Helper()
	opts.APIKey = testPersonaKey
	fake := personatest.New(opts)
	t.Cleanup(fake.Close)
	for _, ev := range evs {
		if err := fake.AddWebhookBody(ev.Body); err != nil {
			t.Fatalf("fake API: %s: %v", ev.ID, err)
		}
	}
	return fake
}

// deliverAll posts to d every event of evs but those skip says.
func deliverAll(t *testing.T, d *daemon, evs []*loadgen.Event, skip map[string]bool) {
	t.Helper()
	for _, ev := range evs {
		if skip[ev.ID] {
			continue
		}
		if r := d.post(ev.Body, nil); r.code != 200 {
			t.Fatalf("delivering %s: %d %s", ev.ID, r.code, r.raw)
		}
	}
}

// child is a personad command line run in a child process (the test
// binary re-executed as personad, see runMainChild).
type child struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	lines  chan string // stderr, line by line
	done   chan struct{}
	err    error
}

func startChild(t *testing.T, env map[string]string, args ...string) *child {
	t.Helper()
	argv, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainChildArgsEnv+"="+string(argv), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &child{cmd: cmd, stdout: &syncBuffer{}, lines: make(chan string, 1<<16), done: make(chan struct{})}
	cmd.Stdout = c.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); <-c.done })
	return c
}

// wait returns the exit code and the whole stderr.
func (c *child) wait(t *testing.T) (int, string) {
	t.Helper()
	var b strings.Builder
	for l := range c.lines {
		b.WriteString(l + "\n")
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Minute):
		t.Fatal("child did not exit")
	}
	return c.cmd.ProcessState.ExitCode(), b.String()
}

func personaEnv(extra map[string]string) map[string]string {
	env := map[string]string{"PERSONA_API_KEY": testPersonaKey}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// projections reads every stored projection of the database at path.
func projections(t *testing.T, path string) map[string]*engine.Inquiry {
	t.Helper()
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]*engine.Inquiry{}
	q := engine.Query{Limit: engine.MaxLimit}
	for {
		page, next, err := db.Inquiries(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, inq := range page {
			out[inq.ID] = inq
		}
		if next == "" {
			return out
		}
		q.Cursor = next
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestReconcileRecoversLostWebhooks(t *testing.T) {
	h := makeLossyHistory(t, 900)
	fake := fakePersona(t, personatest.Options{Burst429Every: 97, Fail500Every: 89}, h.events)

	// One daemon receives every webhook, the other loses some.
	full := startDaemon(t, defaultEnv())
	deliverAll(t, full, h.events, nil)
	full.stop()
	lossy := startDaemon(t, defaultEnv())
	deliverAll(t, lossy, h.events, h.lost)
	lossy.stop()

	reconcileArgs := []string{"reconcile", "-db", lossy.dbPath, "-persona-api", fake.URL, "-persona-rate", "0", "-json"}
	c := startChild(t, personaEnv(nil), reconcileArgs...)
	code, stderr := c.wait(t)
	if code != 0 {
		t.Fatalf("reconcile exit %d:\n%s\n%s", code, c.stdout.String(), stderr)
	}
	var rep reconcile.Report
	if err := json.Unmarshal([]byte(c.stdout.String()), &rep); err != nil {
		t.Fatalf("reconcile -json output: %v\n%s", err, c.stdout.String())
	}
	var got []string
	for _, e := range rep.RecoveredEvents {
		got = append(got, e.EventID)
	}
	var want []string
	for id := range h.lost {
		want = append(want, id)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("recovered %d events, lost %d; recovered but not lost: %v; lost but not recovered: %v",
			len(got), len(want), minus(got, want), minus(want, got))
	}
	if rep.Recovered != len(want) || len(rep.Drifts) != 0 || len(rep.Errors) != 0 {
		t.Errorf("report: %d recovered, drifts %v, errors %v", rep.Recovered, rep.Drifts, rep.Errors)
	}
	for _, id := range want[:3] {
		if !strings.Contains(stderr, "recovered an event no webhook delivered") || !strings.Contains(stderr, "event_id="+id) {
			t.Errorf("no WARN line for recovered event %s:\n%s", id, stderr)
		}
	}
	if fake.RequestsTo("/api/v1/events") == 0 {
		t.Fatal("the fake saw no Events API request")
	}

	// The projections are those of the daemon that got every webhook.
	wantInq, gotInq := projections(t, full.dbPath), projections(t, lossy.dbPath)
	if len(gotInq) != len(wantInq) {
		t.Errorf("%d inquiries after reconcile, want %d", len(gotInq), len(wantInq))
	}
	for id, w := range wantInq {
		if g := gotInq[id]; !reflect.DeepEqual(g, w) {
			t.Errorf("inquiry %s after reconcile:\n got %+v\nwant %+v", id, g, w)
		}
	}
	// The recovered events say where they came from.
	db, err := store.OpenReadOnly(lossy.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.RecoveredEvents[:1] {
		recs, err := db.Events(context.Background(), e.InquiryID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if wantSrc := map[bool]string{true: engine.SourceAPI, false: engine.SourceWebhook}[h.lost[r.EventID]]; r.Source != wantSrc {
				t.Errorf("event %s source %q, want %q", r.EventID, r.Source, wantSrc)
			}
		}
	}
	db.Close()

	// A second run recovers nothing and leaves the file as it was.
	before := fileSum(t, lossy.dbPath)
	c = startChild(t, personaEnv(nil), reconcileArgs...)
	if code, stderr = c.wait(t); code != 0 {
		t.Fatalf("second reconcile exit %d:\n%s", code, stderr)
	}
	rep = reconcile.Report{}
	if err := json.Unmarshal([]byte(c.stdout.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 0 || rep.Checked == 0 {
		t.Errorf("second run: %d checked, %d recovered; want some checked, 0 recovered", rep.Checked, rep.Recovered)
	}
	if fileSum(t, lossy.dbPath) != before {
		t.Error("a second run that recovered nothing changed the database file")
	}

	// Persona's status moves on without a webhook: a drift, reported
	// with both statuses, shown on the inquiry, and exit 0.
	var drifted string
	for id, inq := range gotInq {
		if inq.Status == engine.StatusCompleted || inq.Status == engine.StatusPending {
			drifted = id
			break
		}
	}
	if drifted == "" {
		t.Fatal("no undecided inquiry to drift")
	}
	fake.SetStatus(drifted, "declined")
	c = startChild(t, personaEnv(nil), append(slices.Clone(reconcileArgs[:len(reconcileArgs)-1]), "-inquiry", drifted, "-only-named")...)
	code, stderr = c.wait(t)
	out := c.stdout.String()
	if code != 0 {
		t.Fatalf("reconcile after the drift: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "inquiry status differs from Persona's") {
		t.Errorf("no WARN line for the drift:\n%s", stderr)
	}
	wantLine := fmt.Sprintf("drift %s: personad says %s, Persona says declined", drifted, gotInq[drifted].Status)
	if !strings.Contains(out, wantLine) || !strings.Contains(out, "1 drifts") {
		t.Errorf("report lacks %q:\n%s", wantLine, out)
	}
	code, out, _ = runCLI(t, "inquiry", "-db", lossy.dbPath, drifted)
	if code != 0 || !strings.Contains(out, engine.AnomalyStatusDrift) {
		t.Errorf("personad inquiry after the drift (exit %d) does not show it:\n%s", code, out)
	}
}

// minus returns the elements of a that are not in b (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

func TestReconcileKeepsToTheRateLimit(t *testing.T) {
	h := makeLossyHistory(t, 400)
	// The fake refuses anything past 1,200 a minute; the client is set to
	// 20 a second, its token bucket allowing no burst beyond one request.
	fake := fakePersona(t, personatest.Options{RatePerMinute: 1200}, h.events)
	d := startDaemon(t, defaultEnv())
	deliverAll(t, d, h.events, h.lost)
	d.stop()
	// The key comes from the environment or a file, and nothing runs
	// without one (this process's environment has none).
	code, out, errOut := runCLI(t, "reconcile", "-db", d.dbPath, "-persona-api", fake.URL, "-persona-rate", "1200")
	if code != 2 || !strings.Contains(errOut, "no Persona API key") {
		t.Fatalf("reconcile without a key: exit %d, %s %s", code, out, errOut)
	}
	c := startChild(t, personaEnv(nil), "reconcile", "-db", d.dbPath, "-persona-api", fake.URL, "-persona-rate", "1200")
	if code, stderr := c.wait(t); code != 0 {
		t.Fatalf("reconcile exit %d:\n%s", code, stderr)
	}
	if n := fake.Requests(); n < 60 {
		t.Fatalf("only %d requests: too few to measure a rate", n)
	}
	if got := fake.RateLimited(); got != 0 {
		t.Errorf("the fake refused %d requests past its limit", got)
	}
	// 20/s allows 21 in a closed second; a send delayed by the scheduler
	// (the race detector, a busy machine) may land one or two beside the
	// next. Without the limit this load sends about 80 in a second.
	if got := fake.MaxInWindow(time.Second); got > 24 {
		t.Errorf("%d requests within one second, want at most 24 at 20/s", got)
	}
}

func TestReconcileAlongsideServe(t *testing.T) {
	h := makeLossyHistory(t, 300)
	fake := fakePersona(t, personatest.Options{}, h.events)
	env := defaultEnv()
	env["PERSONA_API_KEY"] = testPersonaKey
	d := startDaemon(t, env, "-persona-api", fake.URL, "-persona-rate", "0", "-reconcile-every", "0")
	deliverAll(t, d, h.events, h.lost)

	// The file is the daemon's: reconcile -db refuses and says what to do.
	keyFile := filepath.Join(t.TempDir(), "persona-key")
	if err := os.WriteFile(keyFile, []byte(testPersonaKey+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "reconcile", "-db", d.dbPath, "-persona-api-key-file", keyFile)
	if code == 0 || !strings.Contains(errOut, "reconcile -api") {
		t.Errorf("reconcile -db beside a serve: exit %d, %s", code, errOut)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "reconcile", "-api", "http://"+d.APIAddr(), "-api-token-file", tokenFile)
	if code != 0 {
		t.Fatalf("reconcile -api: exit %d\n%s\n%s", code, out, errOut)
	}
	want := fmt.Sprintf("%d events recovered", len(h.lost))
	if !strings.Contains(out, want) {
		t.Errorf("reconcile -api report lacks %q:\n%s", want, out)
	}
	// The route's answer, checked against the OpenAPI document: a run
	// after the repair recovers nothing.
	var named string
	for id := range h.lost {
		for _, ev := range h.events {
			if ev.ID == id {
				named = ev.Inquiry.ID
			}
		}
		break
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.APIAddr()+"/v1/reconcile",
		strings.NewReader(`{"inquiry_ids":["`+named+`"],"only_named":true}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r := send(t, req); r.code != 200 || r.body["events_recovered"] != 0.0 || r.body["inquiries_checked"] != 1.0 {
		t.Errorf("POST /v1/reconcile for %s: %d %s", named, r.code, r.raw)
	}
	m := d.metrics()
	for _, line := range []string{
		"personad_reconcile_runs_total 2",
		fmt.Sprintf("personad_reconcile_recovered_events_total %d", len(h.lost)),
		"personad_reconcile_errors_total 0",
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(m, "personad_reconcile_last_success_timestamp_seconds 0\n") {
		t.Error("last success timestamp not set after a successful run")
	}
	if strings.Contains(d.logs.String(), testPersonaKey) {
		t.Error("the Persona API key is in the daemon's logs")
	}
	// Without the token the route refuses.
	code, _, errOut = runCLI(t, "reconcile", "-api", "http://"+d.APIAddr())
	if code == 0 || !strings.Contains(errOut, "401") {
		t.Errorf("reconcile -api without the token: exit %d, %s", code, errOut)
	}
}

func TestBackfillResumesAfterKill(t *testing.T) {
	// 1,000 inquiries: the inquiry events of the first 1,000 generated.
	gen := loadgen.New(loadgen.Config{Seed: 15, Events: 9000, Open: 40, Epoch: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)})
	var evs []*loadgen.Event
	inquiries := map[string]bool{}
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		if !ev.IsInquiry() {
			continue
		}
		if !inquiries[ev.Inquiry.ID] && len(inquiries) == 1000 {
			continue
		}
		inquiries[ev.Inquiry.ID] = true
		evs = append(evs, ev)
	}
	if len(inquiries) != 1000 {
		t.Fatalf("generated %d inquiries, want 1000", len(inquiries))
	}
	fake := fakePersona(t, personatest.Options{Fail500Every: 211}, evs)
	path := filepath.Join(t.TempDir(), "personad.db")
	args := []string{"backfill", "-db", path, "-since", "2026-01-01", "-persona-api", fake.URL, "-persona-rate", "0", "-workers", "2"}

	// Kill it once three pages of inquiries are done.
	c := startChild(t, personaEnv(nil), args...)
	pages := 0
	for line := range c.lines {
		if strings.HasPrefix(line, "backfill: ") {
			if pages++; pages == 3 {
				c.cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
	}
	c.wait(t)
	if pages < 3 {
		t.Fatalf("backfill ended after %d pages, before it could be killed", pages)
	}
	listedBefore := fake.RequestsTo("/api/v1/inquiries")

	c = startChild(t, personaEnv(nil), append(args, "-json")...)
	code, stderr := c.wait(t)
	if code != 0 {
		t.Fatalf("resumed backfill exit %d:\n%s", code, stderr)
	}
	var rep reconcile.BackfillReport
	if err := json.Unmarshal([]byte(c.stdout.String()), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || !rep.Complete || rep.Listed != 1000 || rep.Pages != 10 {
		t.Errorf("resumed backfill: resumed %v, complete %v, %d listed on %d pages; want true, true, 1000 on 10",
			rep.Resumed, rep.Complete, rep.Listed, rep.Pages)
	}
	// It went on from the fourth page (or the third, if killed before
	// saving it), not from the first.
	if got := fake.RequestsTo("/api/v1/inquiries") - listedBefore; got > 8 {
		t.Errorf("the resumed run read %d pages of inquiries, want at most 8", got)
	}
	// Every event once, every inquiry as Persona has it.
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != int64(len(evs)) {
		t.Errorf("%d events stored, want %d", st.Events, len(evs))
	}
	got := projections(t, path)
	if len(got) != 1000 {
		t.Errorf("%d inquiries imported, want 1000", len(got))
	}
	for _, ev := range evs {
		if inq := got[ev.Inquiry.ID]; inq == nil || inq.Status != ev.Inquiry.Final.Status {
			t.Errorf("inquiry %s: %+v, want status %s", ev.Inquiry.ID, inq, ev.Inquiry.Final.Status)
			break
		}
	}
}

func TestServeReconcilesInTheBackground(t *testing.T) {
	h := makeLossyHistory(t, 300)
	fake := fakePersona(t, personatest.Options{}, h.events)
	env := defaultEnv()
	d := &daemon{t: t, dbPath: filepath.Join(t.TempDir(), "personad.db"), logs: &syncBuffer{}}
	d.Serve = NewServe(io.Discard, d.logs)
	d.Getenv = func(k string) string { return env[k] }
	args := []string{"-db", d.dbPath, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-log-format", "json"}
	if err := d.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	deliverAll(t, d, h.events, h.lost)
	// Without a key: no reconciliation, and the route says why.
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.APIAddr()+"/v1/reconcile", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if r := send(t, req); r.code != 404 || r.errCode() != "not_configured" {
		t.Errorf("POST /v1/reconcile without a key: %d %s", r.code, r.raw)
	}
	d.stop()

	// An undecided inquiry whose webhooks all arrived, decided at Persona
	// meanwhile (in its dashboard, say): a drift.
	lostOf := map[string]bool{}
	for _, ev := range h.events {
		if h.lost[ev.ID] {
			lostOf[ev.Inquiry.ID] = true
		}
	}
	got := projections(t, d.dbPath)
	var drifted string
	for id, inq := range got {
		if inq.Status == engine.StatusCompleted && !inq.Redacted && !lostOf[id] {
			drifted = id
			break
		}
	}
	if drifted == "" {
		t.Fatal("no completed inquiry to drift")
	}
	fake.SetStatus(drifted, "approved")

	// With a key, serve reconciles on its own (the first run is due at
	// once here, a minute after start otherwise).
	env["PERSONA_API_KEY"] = testPersonaKey
	s := NewServe(io.Discard, d.logs)
	s.Getenv = func(k string) string { return env[k] }
	if err := s.ParseFlags(append(args, "-persona-api", fake.URL, "-persona-rate", "0")); err != nil {
		t.Fatal(err)
	}
	if s.ReconcileEvery != defaultReconcileEvery {
		t.Errorf("-reconcile-every with a key = %v, want %v", s.ReconcileEvery, defaultReconcileEvery)
	}
	s.ReconcileFirstAfter = 50 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	d2 := &daemon{Serve: s, t: t, dbPath: d.dbPath, logs: d.logs}
	t.Cleanup(d2.stop)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(d2.metrics(), "personad_reconcile_runs_total 1\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconcile run within a minute:\n%s", d.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := d2.metrics()
	for _, line := range []string{
		fmt.Sprintf("personad_reconcile_recovered_events_total %d", len(h.lost)),
		`personad_anomalies_total{kind="status_drift"} 1`,
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	r := d2.get("/v1/inquiries/" + drifted)
	anomalies, _ := r.body["anomalies"].([]any)
	found := false
	for _, a := range anomalies {
		a, _ := a.(map[string]any)
		found = found || (a["kind"] == "status_drift" && a["from"] == "completed" && a["to"] == "approved")
	}
	if !found {
		t.Errorf("GET /v1/inquiries/%s shows no status_drift from completed to approved: %s", drifted, r.raw)
	}
	// A recovered event's history entry says it came from the API.
	var lostID string
	for id := range h.lost {
		lostID = id
		break
	}
	var inqID string
	for _, ev := range h.events {
		if ev.ID == lostID {
			inqID = ev.Inquiry.ID
		}
	}
	r = d2.get("/v1/inquiries/" + inqID + "/events")
	evs, _ := r.body["events"].([]any)
	sources := map[string]string{}
	for _, e := range evs {
		e, _ := e.(map[string]any)
		sources[e["id"].(string)], _ = e["source"].(string)
	}
	if sources[lostID] != "api" {
		t.Errorf("history entry of recovered event %s has source %q, want api: %s", lostID, sources[lostID], r.raw)
	}
	logs := d.logs.String()
	if !strings.Contains(logs, `"msg":"recovered an event no webhook delivered"`) || !strings.Contains(logs, `"event_id":"`+lostID+`"`) {
		t.Errorf("no WARN line for the recovered event %s", lostID)
	}
	if strings.Contains(logs, testPersonaKey) {
		t.Error("the Persona API key is in the logs")
	}
}
