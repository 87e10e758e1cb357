package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// TestBenchServe runs the whole command: an in-process daemon, the load
// with out-of-order and duplicate deliveries during a rotation, the
// verification, the query phase and the ceiling.
func TestBenchServe(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", "-serve", "-n", "2000", "-c", "16", "-open", "40", "-window", "50",
		"-duplicates", "0.05", "-concurrent-duplicates", "0.02", "-rotation", "-interval", "250ms", "-get-duration", "200ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"\n0 mismatches\n", "acknowledged  2,000 of 2,000 events", "rss at start:",
		"query API:", "ceiling (a bare net/http server", "personad/ceiling: throughput"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "duplicates sent") || strings.Contains(out, "duplicates sent 0\n") {
		t.Errorf("no duplicates were sent:\n%s", out)
	}
}

// TestBenchJSON: -json prints one summary document with the counts.
func TestBenchJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", "-serve", "-n", "300", "-c", "8", "-open", "20", "-json", "-ceiling=false")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	p := rep.Personad
	if p.Events != 300 || p.AckedEvents != 300 || rep.Verify == nil || rep.Verify.Mismatches != 0 || rep.Ceiling != nil ||
		p.StatusCodes["200"] != p.Requests || p.AvgBodyBytes < loadgen.MinBodySize || rep.Seed == 0 {
		t.Errorf("summary: %s", out)
	}
}

// TestBenchRunningDaemon loads a daemon started apart, twice (the second
// run verifies from the feed's head onwards), and checks what the bench
// says when the secret or the decision policy does not match.
func TestBenchRunningDaemon(t *testing.T) {
	d := startDaemon(t, defaultEnv(), "-auto-decide")
	t.Setenv(envSecrets, testSecret)
	t.Setenv(envAPIToken, testToken)
	args := []string{"bench", "-url", "http://" + d.WebhookAddr() + server.WebhookPath, "-api", "http://" + d.APIAddr(),
		"-n", "300", "-c", "8", "-open", "20", "-auto-decide"}
	for _, seed := range []string{"1", "2"} {
		code, out, errOut := runCLI(t, append(args, "-seed", seed)...)
		if code != 0 || !strings.Contains(out, "\n0 mismatches\n") || strings.Contains(out, "ceiling") {
			t.Fatalf("seed %s: exit %d\n%s%s", seed, code, out, errOut)
		}
	}
	// Ground truth without -auto-decide: completed and failed inquiries
	// have no decision, the daemon gave them one.
	code, out, errOut := runCLI(t, slices.Delete(append(args, "-seed", "3"), len(args)-1, len(args))...)
	if code != 1 || strings.Contains(out, "\n0 mismatches\n") || !strings.Contains(errOut, "mismatches between ground truth") ||
		!strings.Contains(out, "ground truth completed/null") {
		t.Errorf("policy mismatch: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv(envSecrets, "wbhsec_wrong")
	code, _, errOut = runCLI(t, append(args, "-seed", "4", "-retries", "0")...)
	if code != 1 || !strings.Contains(errOut, "no event was acknowledged") || !strings.Contains(errOut, "Try: the signing secret") {
		t.Errorf("wrong secret: exit %d\n%s", code, errOut)
	}
}

func TestBenchFlags(t *testing.T) {
	code, out, errOut := runCLI(t, "bench", "-h")
	if code != 0 {
		t.Fatalf("bench -h: exit %d", code)
	}
	for _, flag := range []string{"serve", "keep", "synchronous", "auto-decide", "url", "api", "webhook-secrets-file",
		"api-token-file", "c", "rate", "n", "duration", "window", "duplicates", "concurrent-duplicates", "rotation",
		"retries", "retry-backoff", "timeout", "seed", "open", "interval", "json", "verify", "ceiling", "get-duration",
		"serve-bin", "compare-bin", "runs", "soak-window"} {
		if !strings.Contains(out+errOut, "\n  -"+flag+" ") && !strings.Contains(out+errOut, "\n  -"+flag+"\n") {
			t.Errorf("bench -h does not document -%s", flag)
		}
	}
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-serve", "-url", "http://x/"}, nil, "-serve starts its own daemon"},
		{[]string{"-serve", "-n", "10", "-duration", "1s"}, nil, "-n and -duration"},
		{[]string{"-serve", "-synchronous", "off"}, nil, "synchronous"},
		{[]string{"-serve", "-c", "0"}, nil, "-c must be"},
		{[]string{"-serve", "-duration", "0s"}, nil, "-duration must be positive"},
		{[]string{"-serve", "-retries", "8"}, nil, "at most 7"},
		{[]string{"-serve", "-duplicates", "2"}, nil, "shares between 0 and 1"},
		{[]string{"-keep"}, nil, "apply to the daemon the bench starts"},
		{[]string{"-notify"}, nil, "apply to the daemon the bench starts"},
		{[]string{"-serve", "-serve-bin", "personad"}, nil, "-serve runs the daemon in this process"},
		{[]string{"-serve-bin", "personad", "-api", "http://x/"}, nil, "-serve-bin starts its own daemon"},
		{[]string{"-compare-bin", "personad", "-url", "http://x/"}, nil, "-compare-bin starts its own daemon"},
		{[]string{"-serve", "-runs", "2"}, nil, "-runs applies to -compare-bin"},
		{[]string{"-compare-bin", "personad", "-runs", "0"}, nil, "-runs must be at least 1"},
		{[]string{"-compare-bin", "personad", "-get-duration", "1s"}, nil, "not measured with -compare-bin"},
		{[]string{"-serve", "-soak-window", "10s"}, nil, "-soak-window applies to a run for a -duration"},
		{[]string{"-serve", "-duration", "1m", "-soak-window", "0s"}, nil, "-soak-window must be positive"},
		{[]string{"-serve-bin", "no-such-personad-binary"}, nil, "-serve-bin"},
		{[]string{"-url", "localhost:8080"}, map[string]string{envSecrets: "x"}, "not an http(s) URL"},
		{nil, map[string]string{}, envSecrets},
	}
	for _, tt := range tests {
		b := newBench(io.Discard, io.Discard)
		b.getenv = func(k string) string { return tt.env[k] }
		err := b.ParseFlags(tt.args)
		if err == nil || !strings.Contains(formatError(err), tt.want) || !strings.Contains(formatError(err), "Try:") {
			t.Errorf("bench %q: %v, want an error with a hint mentioning %q", tt.args, err, tt.want)
		}
	}
}

// fakeTarget is personad's engine and query API on a memory store, fed
// directly: the verifier's counterpart in unit tests.
type fakeTarget struct {
	eng  *engine.Engine
	api  *apiClient
	srv  *httptest.Server
	exps []expectation
	// byInquiry holds each inquiry's generated events in created-at order.
	byInquiry map[string][]*loadgen.Event
}

// newFakeTarget generates n events and an API server whose handler is
// wrapped by wrap (nil: none). Nothing is ingested yet.
func newFakeTarget(t *testing.T, n int, wrap func(http.Handler) http.Handler) *fakeTarget {
	t.Helper()
	f := &fakeTarget{eng: engine.New(engine.NewMemoryStore(), engine.Policy{}), byInquiry: map[string][]*loadgen.Event{}}
	var h http.Handler = server.NewAPIHandler(server.APIConfig{Engine: f.eng})
	if wrap != nil {
		h = wrap(h)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	f.api = &apiClient{client: f.srv.Client(), base: f.srv.URL}
	gen := loadgen.New(loadgen.Config{Seed: 9, Events: n, Open: 10})
	var inqs []*loadgen.Inquiry
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		if _, ok := f.byInquiry[ev.Inquiry.ID]; !ok {
			inqs = append(inqs, ev.Inquiry)
		}
		f.byInquiry[ev.Inquiry.ID] = append(f.byInquiry[ev.Inquiry.ID], ev)
	}
	for _, inq := range inqs {
		f.exps = append(f.exps, expectation{id: inq.ID, final: inq.Final, tags: inq.Tags, changes: len(inq.Changes), events: inq.Events, inOrder: true})
	}
	return f
}

func (f *fakeTarget) ingest(t *testing.T, evs ...*loadgen.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := f.eng.Ingest(context.Background(), engine.Delivery{Body: ev.Body, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fakeTarget) ingestAll(t *testing.T) {
	t.Helper()
	for _, e := range f.exps {
		f.ingest(t, f.byInquiry[e.id]...)
	}
}

func (f *fakeTarget) verify(t *testing.T) *verification {
	t.Helper()
	v, err := verify(context.Background(), f.api, f.exps, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantMismatch(t *testing.T, v *verification, substr string) {
	t.Helper()
	for _, d := range v.details {
		if strings.Contains(d, substr) {
			return
		}
	}
	t.Errorf("%d mismatches, none mentions %q: %q", v.n, substr, v.details)
}

func TestVerifyClean(t *testing.T) {
	f := newFakeTarget(t, 600, nil)
	f.ingestAll(t)
	if v := f.verify(t); v.n != 0 || v.inquiries != len(f.exps) || v.changes == 0 {
		t.Errorf("in-order delivery: %d mismatches %q, %d inquiries, %d changes", v.n, v.details, v.inquiries, v.changes)
	}
}

// TestVerifyOutOfOrder: reversed delivery skips changes; that is fine for
// an inquiry known to be out of order, a mismatch for one claimed in order.
func TestVerifyOutOfOrder(t *testing.T) {
	f := newFakeTarget(t, 600, nil)
	for i, e := range f.exps {
		evs := slices.Clone(f.byInquiry[e.id])
		slices.Reverse(evs)
		f.ingest(t, evs...)
		f.exps[i].inOrder = false
	}
	if v := f.verify(t); v.n != 0 {
		t.Fatalf("out-of-order delivery: %d mismatches %q", v.n, v.details)
	}
	for i := range f.exps {
		f.exps[i].inOrder = true
	}
	wantMismatch(t, f.verify(t), "want exactly")
}

// TestVerifySubset: a daemon that missed events is caught.
func TestVerifySubset(t *testing.T) {
	f := newFakeTarget(t, 600, nil)
	missing := ""
	for _, e := range f.exps {
		evs := f.byInquiry[e.id]
		if missing == "" && e.events > 3 {
			missing = e.id
			for _, ev := range evs {
				if ev.Step != e.events-1 { // drop the last inquiry event
					f.ingest(t, ev)
				}
			}
			continue
		}
		if e.id == f.exps[len(f.exps)-1].id {
			continue // never delivered at all
		}
		f.ingest(t, evs...)
	}
	v := f.verify(t)
	wantMismatch(t, v, "inquiry "+missing+": event_count")
	wantMismatch(t, v, "inquiry "+f.exps[len(f.exps)-1].id+": not found")
}

// TestVerifyWrongTruth: a target that disagrees with ground truth is caught.
func TestVerifyWrongTruth(t *testing.T) {
	f := newFakeTarget(t, 300, nil)
	f.ingestAll(t)
	f.exps[0].final.Redacted = !f.exps[0].final.Redacted
	f.exps[1].tags = append(slices.Clone(f.exps[1].tags), "not-there")
	v := f.verify(t)
	wantMismatch(t, v, "inquiry "+f.exps[0].id+": projection")
	wantMismatch(t, v, "inquiry "+f.exps[1].id+": tags")
	if v.n != 2 {
		t.Errorf("%d mismatches, want 2: %q", v.n, v.details)
	}
}

// TestVerifyFeed: a change feed with a gap, a repeat, a broken chain or a
// row that changes nothing is caught.
func TestVerifyFeed(t *testing.T) {
	tamper := func(edit func([]engine.Change) []engine.Change) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1/changes" {
					h.ServeHTTP(w, r)
					return
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				var page struct {
					Changes []engine.Change `json:"changes"`
					Next    int64           `json:"next"`
				}
				json.Unmarshal(rec.Body.Bytes(), &page)
				if r.URL.Query().Get("after") == "0" {
					page.Changes = edit(page.Changes)
				}
				json.NewEncoder(w).Encode(page)
			})
		}
	}
	tests := []struct {
		name string
		edit func([]engine.Change) []engine.Change
		want string
	}{
		{"gap", func(c []engine.Change) []engine.Change { return slices.Delete(c, 5, 6) }, "a gap of 1"},
		{"repeat", func(c []engine.Change) []engine.Change { return slices.Insert(c, 6, c[5]) }, "a repeat"},
		{"broken chain", func(c []engine.Change) []engine.Change {
			for i := range c {
				if c[i].FromStatus != "" {
					c[i].FromStatus = engine.StatusDeclined
					break
				}
			}
			return c
		}, "the previous change went to"},
		{"no change", func(c []engine.Change) []engine.Change {
			for i := range c {
				if c[i].FromStatus != "" {
					c[i].ToStatus, c[i].Decision, c[i].Redacted = c[i].FromStatus, "", false
					break
				}
			}
			return c
		}, "repeats the previous state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTarget(t, 300, tamper(tt.edit))
			f.ingestAll(t)
			wantMismatch(t, f.verify(t), tt.want)
		})
	}
}

func TestFeedHead(t *testing.T) {
	f := newFakeTarget(t, 400, nil)
	if head, err := f.api.feedHead(context.Background()); err != nil || head != 0 {
		t.Errorf("empty feed: head %d, %v", head, err)
	}
	f.ingestAll(t)
	changes, err := f.eng.Changes(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if head, err := f.api.feedHead(context.Background()); err != nil || head != changes[len(changes)-1].Seq {
		t.Errorf("head %d, %v; want %d", head, err, changes[len(changes)-1].Seq)
	}
}

// TestSchedule: every delivery is made once, in order without a window;
// duplicates come after their original; the same seed gives the same order.
func TestSchedule(t *testing.T) {
	run := func(seed uint64, window int) ([]string, int, int) {
		s := newSchedule(seed, window, 0.1, 0.05)
		var order []string
		twins, dups := 0, 0
		take := func(ds []*delivery) {
			for _, d := range ds {
				if d.attempt == 2 {
					dups++
					if !slices.Contains(order, d.ev.ev.ID) {
						t.Fatalf("duplicate of %s before the original", d.ev.ev.ID)
					}
					continue
				}
				if d.twin {
					twins++
				}
				order = append(order, d.ev.ev.ID)
			}
		}
		for i := range 2000 {
			take(s.push(&delivery{ev: &eventTrack{ev: &loadgen.Event{ID: string(rune('a'+i%26)) + string(rune(i))}}, attempt: 1}))
		}
		take(s.flush())
		return order, twins, dups
	}
	inOrder, twins, dups := run(1, 0)
	if len(inOrder) != 2000 || !slices.IsSortedFunc(inOrder, func(a, b string) int { return cmpRune(a) - cmpRune(b) }) {
		t.Errorf("window 0 reordered or lost deliveries")
	}
	if twins < 50 || twins > 150 || dups < 130 || dups > 270 {
		t.Errorf("%d twins and %d duplicates of 2000, want about 100 and 200", twins, dups)
	}
	a, _, _ := run(2, 100)
	b, _, _ := run(2, 100)
	if !slices.Equal(a, b) || slices.Equal(a, inOrder) || len(a) != 2000 {
		t.Errorf("window 100: not deterministic, not shuffled, or lost deliveries")
	}
	seen := map[string]bool{}
	for _, id := range a {
		if seen[id] {
			t.Fatalf("%q delivered twice as fresh", id)
		}
		seen[id] = true
	}
}

func cmpRune(s string) int { return int([]rune(s)[1]) }

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	rand.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	slices.Sort(d)
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.9, 90}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := quantile(d, tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing")
	}
}

func TestMetricValue(t *testing.T) {
	exp := []byte("# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4.2901504e+07\n")
	if v, err := metricValue(exp, "process_resident_memory_bytes"); err != nil || v != 42901504 {
		t.Errorf("got %d, %v", v, err)
	}
	if _, err := metricValue(bytes.TrimSpace(exp[:40]), "process_resident_memory_bytes"); err == nil {
		t.Error("no sample, no error")
	}
}

// TestLoadRetriesAndHeaders: every request is signed as Persona signs
// (both sets of a rotation), carries the attempt headers, and a delivery
// answered 503 is retried with the next attempt number.
func TestLoadRetriesAndHeaders(t *testing.T) {
	secret, old := []byte("wbhsec_current"), []byte("wbhsec_old")
	verifier := server.Verifier{Secrets: [][]byte{secret}, Tolerance: time.Minute}
	var mu sync.Mutex
	attempts := map[string][]string{} // event id → Attempts-Made of each request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := engine.Parse(body)
		sig := r.Header.Get(server.SignatureHeader)
		if err != nil || verifier.Verify(sig, body, time.Now()) != nil || strings.Count(sig, "t=") != 2 ||
			r.Header.Get("Persona-Webhook-First-Attempted-At") == "" || r.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("request: parse %v, signature %q, headers %v", err, sig, r.Header)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		made := r.Header.Get("Persona-Webhook-Attempts-Made")
		left, _ := strconv.Atoi(r.Header.Get("Persona-Webhook-Attempts-Left"))
		if n, _ := strconv.Atoi(made); n+left != personaAttempts {
			t.Errorf("Attempts-Made %s, Attempts-Left %d", made, left)
		}
		mu.Lock()
		attempts[ev.ID] = append(attempts[ev.ID], made)
		first := len(attempts[ev.ID]) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	res := runLoad(context.Background(), srv.Client(), loadConfig{
		gen: loadgen.Config{Seed: 4, Events: 200, Open: 10}, url: srv.URL, secret: secret, oldSecret: old,
		concurrency: 8, window: 10, retries: 2, backoff: time.Millisecond,
	})
	if res.acked != 200 || res.retries != 200 || res.codes["503"] != 200 || res.codes["200"] != 200 || len(res.notAcked) != 0 {
		t.Errorf("acked %d, retries %d, answers %v, not acknowledged %d", res.acked, res.retries, res.codes, len(res.notAcked))
	}
	for id, made := range attempts {
		if !slices.Equal(made, []string{"1", "2"}) {
			t.Errorf("event %s: Attempts-Made %q, want 1 then 2", id, made)
		}
	}
	if res.interrupted || len(res.latencies) != int(res.requests) {
		t.Errorf("interrupted %v, %d latencies for %d requests", res.interrupted, len(res.latencies), res.requests)
	}
}

// TestLoadGivesUp: a delivery that keeps failing is retried -retries
// times, then counted as not acknowledged.
func TestLoadGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	res := runLoad(context.Background(), srv.Client(), loadConfig{
		gen: loadgen.Config{Seed: 5, Events: 50, Open: 5}, url: srv.URL, secret: []byte("s"),
		concurrency: 4, retries: 2, backoff: time.Millisecond,
	})
	if res.acked != 0 || res.retries != 100 || res.codes["500"] != 150 || len(res.notAcked) != 50 {
		t.Errorf("acked %d, retries %d, answers %v, not acknowledged %d", res.acked, res.retries, res.codes, len(res.notAcked))
	}
	if err := noAcknowledgement(res); !strings.Contains(formatError(err), "500: 150") {
		t.Errorf("error %q", formatError(err))
	}
}

// TestOpenLoopCountsQueueing: at a fixed rate, a delivery that waits
// behind a stalled one counts its wait as latency, from its scheduled
// time, rather than hiding it (coordinated omission).
func TestOpenLoopCountsQueueing(t *testing.T) {
	const stall = 300 * time.Millisecond
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		first.Do(func() { time.Sleep(stall) })
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	res := runLoad(context.Background(), srv.Client(), loadConfig{
		gen: loadgen.Config{Seed: 5, Events: 20, Open: 5}, url: srv.URL, secret: []byte("wbhsec_x"),
		concurrency: 1, rate: 100, backoff: time.Millisecond,
	})
	if res.acked != 20 {
		t.Fatalf("acked %d of 20", res.acked)
	}
	// Deliveries scheduled every 10 ms in the stall's first 200 ms waited
	// at least 100 ms each behind it.
	waited := 0
	for _, l := range res.latencies {
		if l >= stall/3 {
			waited++
		}
	}
	if waited < 10 || res.lateness < stall/3 {
		t.Errorf("%d of %d latencies ≥ %v, lateness %v: queueing behind the stall is not counted", waited, len(res.latencies), stall/3, res.lateness)
	}
}

// TestBenchWarnsOfPlainHTTPToken: the API token is about to travel
// unencrypted only when -api is plain HTTP off loopback.
func TestBenchWarnsOfPlainHTTPToken(t *testing.T) {
	for _, tt := range []struct {
		api  string
		warn bool
	}{
		{"http://personad.example.com:8081", true},
		{"https://personad.example.com", false},
		{"http://127.0.0.1:8081", false},
		{"http://localhost:8081", false},
	} {
		var stderr bytes.Buffer
		b := newBench(io.Discard, &stderr)
		env := map[string]string{envSecrets: "x", envAPIToken: "s3cr3t-api-token-value"}
		b.getenv = func(k string) string { return env[k] }
		if err := b.ParseFlags([]string{"-api", tt.api}); err != nil {
			t.Fatalf("-api %s: %v", tt.api, err)
		}
		if got := strings.Contains(stderr.String(), "unencrypted"); got != tt.warn {
			t.Errorf("-api %s: warned %v, want %v (%q)", tt.api, got, tt.warn, stderr.String())
		}
		if strings.Contains(stderr.String(), "s3cr3t") {
			t.Errorf("-api %s: the warning shows the token: %q", tt.api, stderr.String())
		}
	}
}

// TestRenderAhead: before the clock starts, the producer has rendered
// every delivery of a run that fits in its buffer, and fills the buffer
// of one that does not; either way every event is delivered once.
func TestRenderAhead(t *testing.T) {
	for _, tt := range []struct {
		name   string
		buffer int
	}{{"all ahead", 500}, {"buffer full", 64}} {
		t.Run(tt.name, func(t *testing.T) {
			const events = 300
			l := &loader{cfg: loadConfig{gen: loadgen.Config{Seed: 3, Events: events, Open: 10}, window: 20}}
			out := make(chan *delivery, tt.buffer)
			primed := make(chan struct{})
			var producer sync.WaitGroup
			producer.Go(func() { l.produce(context.Background(), out, make(chan struct{}), primed) })
			<-primed
			if got, want := len(out), min(events, tt.buffer); got != want {
				t.Errorf("%d deliveries rendered when primed, want %d", got, want)
			}
			seen := map[string]bool{}
			for d := range out {
				if len(d.ev.ev.Body) < loadgen.MinBodySize || seen[d.ev.ev.ID] {
					t.Fatalf("delivery of %s: body of %d bytes, seen before %v", d.ev.ev.ID, len(d.ev.ev.Body), seen[d.ev.ev.ID])
				}
				seen[d.ev.ev.ID] = true
			}
			producer.Wait()
			if len(seen) != events || l.generated != events {
				t.Errorf("%d events delivered, %d generated, want %d", len(seen), l.generated, events)
			}
		})
	}
}

// TestSoakSendsWhatItGenerated: a run for a duration renders ahead while
// it runs, and still sends every event it generated (the ground truth),
// however many were rendered when the duration ran out; its latencies
// are split into windows of the duration.
func TestSoakSendsWhatItGenerated(t *testing.T) {
	var mu sync.Mutex
	received := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := engine.Parse(body)
		if err != nil {
			t.Errorf("parse: %v", err)
		}
		mu.Lock()
		received[ev.ID] = true
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	res := runLoad(context.Background(), srv.Client(), loadConfig{
		gen: loadgen.Config{Seed: 6, Open: 10}, url: srv.URL, secret: []byte("wbhsec_x"),
		concurrency: 4, duration: 200 * time.Millisecond, window: 10, duplicates: 0.05, soakWindow: 50 * time.Millisecond,
	})
	if res.interrupted || res.generated == 0 || len(received) != res.generated || res.acked != int64(res.generated) || len(res.notAcked) != 0 {
		t.Errorf("generated %d, received %d distinct events, acked %d, not acknowledged %d, interrupted %v",
			res.generated, len(received), res.acked, len(res.notAcked), res.interrupted)
	}
	n := 0
	for _, w := range res.windows {
		n += len(w)
	}
	if len(res.windows) != 4 || n != int(res.requests) {
		t.Errorf("%d windows holding %d latencies, want 4 holding all %d", len(res.windows), n, res.requests)
	}
}

// TestRecorderWindows: a latency counts in the window of when its
// delivery was due or sent; before the start in the first, after the
// duration in the last.
func TestRecorderWindows(t *testing.T) {
	begin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := recorder{codes: map[string]int64{}}
	r.start(begin, time.Minute, 150*time.Second) // windows 0–1m, 1m–2m, 2m–2m30s
	for _, at := range []time.Duration{-time.Second, 0, 59 * time.Second, time.Minute, 149 * time.Second, 10 * time.Minute} {
		r.add(begin.Add(at), at, "200")
	}
	want := [][]time.Duration{{-time.Second, 0, 59 * time.Second}, {time.Minute}, {149 * time.Second, 10 * time.Minute}}
	if len(r.windows) != len(want) {
		t.Fatalf("%d windows, want %d", len(r.windows), len(want))
	}
	for i := range want {
		if !slices.Equal(r.windows[i], want[i]) {
			t.Errorf("window %d holds %v, want %v", i, r.windows[i], want[i])
		}
	}
	s := summarizeRun(&loadResult{windows: r.windows, windowLen: r.windowLen, latencies: r.all})
	if s.Soak == nil || len(s.Soak.Windows) != 3 || s.Soak.Windows[2].StartSeconds != 120 ||
		s.Soak.P99LastOverFirst != ms(10*time.Minute)/ms(59*time.Second) {
		t.Errorf("soak report %+v", s.Soak)
	}
	none := recorder{codes: map[string]int64{}}
	none.start(begin, time.Minute, 0) // a count of events: no windows
	none.add(begin, time.Millisecond, "200")
	if none.windows != nil {
		t.Errorf("windows without a duration: %v", none.windows)
	}
}

// buildPersonad builds this package's binary into a temp directory.
func buildPersonad(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "personad")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBenchChildProcess runs the daemon as a child process: -compare-bin
// with the same binary as old and new, and a short soak of -serve-bin.
func TestBenchChildProcess(t *testing.T) {
	bin := buildPersonad(t)
	t.Run("compare", func(t *testing.T) {
		code, out, errOut := runCLI(t, "bench", "-compare-bin", bin, "-serve-bin", bin, "-runs", "2",
			"-n", "300", "-c", "8", "-open", "20", "-json")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		var rep benchReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		c := rep.Compare
		if c == nil || rep.Personad != nil || !rep.ChildProcess || c.Old != bin || c.New != bin || len(c.Rounds) != 2 {
			t.Fatalf("summary: %s", out)
		}
		for i, r := range c.Rounds {
			if want := []string{"old", "new"}[i]; r.First != want {
				t.Errorf("round %d: %s first, want %s", i+1, r.First, want)
			}
			for _, run := range []*daemonRun{r.Old, r.New} {
				if run == nil || run.Binary != bin || run.Personad.AckedEvents != 300 || run.Verify == nil || run.Verify.Mismatches != 0 ||
					run.RSSPeak < run.RSSEnd || run.RSSEnd == 0 || !strings.Contains(run.RSSSource, "daemon process") {
					t.Errorf("round %d: run %+v", i+1, run)
				}
			}
			if r.Ceiling == nil || r.Ceiling.AckedEvents != 300 {
				t.Errorf("round %d: ceiling %+v", i+1, r.Ceiling)
			}
		}
		if c.OldMedian.AckedPerSecond <= 0 || c.NewMedian.P99 <= 0 || c.CeilingMedian == nil ||
			c.NewOverOld.Throughput != ratio(c.NewMedian.AckedPerSecond, c.OldMedian.AckedPerSecond) || c.NewOverCeiling == nil {
			t.Errorf("medians: %s", out)
		}
	})
	t.Run("soak", func(t *testing.T) {
		code, out, errOut := runCLI(t, "bench", "-serve-bin", bin, "-rate", "300", "-duration", "1s", "-soak-window", "250ms",
			"-c", "8", "-open", "20", "-notify", "-ceiling=false")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"a child process (pid", "\n0 mismatches\n", "per 250ms window", "p99 last/first",
			"daemon process", ", peak ", "µs/request (load generator)", "push (to a receiver"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if n := strings.Count(out, " requests  p50 "); n != 4 {
			t.Errorf("%d window lines, want 4:\n%s", n, out)
		}
	})
}
