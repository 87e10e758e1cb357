package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
	"github.com/personad/personad/store"
)

const (
	testSecret    = "wbhsec_e2e_current"
	testOldSecret = "wbhsec_e2e_previous"
	testToken     = "e2e-token"
)

// daemon is a real personad serve on 127.0.0.1:0 with a temp database.
type daemon struct {
	*Serve
	t      *testing.T
	dbPath string
	logs   *syncBuffer
	closed bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startDaemon(t *testing.T, env map[string]string, flags ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dbPath: filepath.Join(t.TempDir(), "personad.db"), logs: &syncBuffer{}}
	d.Serve = NewServe(io.Discard, d.logs)
	d.Getenv = func(k string) string { return env[k] }
	args := append([]string{"-db", d.dbPath, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-max-body", "1MiB", "-log-format", "json"}, flags...)
	if err := d.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop() })
	return d
}

func (d *daemon) stop() {
	if d.closed {
		return
	}
	d.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		d.t.Errorf("shutdown: %v", err)
	}
}

func defaultEnv() map[string]string {
	return map[string]string{envSecrets: testSecret, envAPIToken: testToken}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	code int
	body map[string]any
	raw  string
}

func (r response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// validated is a client whose every response of the query API is checked
// against the served OpenAPI document (server/openapitest).
func validated(t *testing.T) *http.Client {
	return &http.Client{Transport: openapitest.Transport(t, nil)}
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := validated(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", req.Method, req.URL, resp.StatusCode, raw)
	}
	return r
}

// post signs body with the current secret, then lets edit change the request.
func (d *daemon) post(body []byte, edit func(*http.Request)) response {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+server.WebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(testSecret)))
	req.Header.Set("Persona-Webhook-Attempts-Made", "1")
	if edit != nil {
		edit(req)
	}
	return send(d.t, req)
}

func (d *daemon) get(path string) response {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	return send(d.t, req)
}

// metrics returns the daemon's /metrics page, failing unless it is a 200.
func (d *daemon) metrics() string {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := validated(d.t).Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("/metrics: %d %s (%v)", resp.StatusCode, raw, err)
	}
	return string(raw)
}

func (d *daemon) stats() store.Stats {
	d.t.Helper()
	db, err := store.OpenReadOnly(d.dbPath)
	if err != nil {
		d.t.Fatal(err)
	}
	defer db.Close()
	st, err := db.Stats(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	return st
}

func sigAt(body []byte, at time.Time, secret string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, at, []byte(secret)))
	}
}

func TestServeRefusesUnsafeConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no webhook secret", map[string]string{}, nil, envSecrets},
		{"blank webhook secret", map[string]string{envSecrets: " , "}, nil, envSecrets},
		{"API off loopback without token", map[string]string{envSecrets: "x"}, []string{"-api-listen", ":8081"}, envAPIToken},
		{"bad synchronous", map[string]string{envSecrets: "x"}, []string{"-synchronous", "off"}, "synchronous"},
		{"bad max-body", map[string]string{envSecrets: "x"}, []string{"-max-body", "lots"}, "max-body"},
		{"bad allow-ips", map[string]string{envSecrets: "x"}, []string{"-allow-ips", "10.0.0.0/99"}, "allow-ips"},
		{"negative forget-within", map[string]string{envSecrets: "x"}, []string{"-forget-within", "-1s"}, "forget-within"},
		{"pprof without API token", map[string]string{envSecrets: "x"}, []string{"-pprof"}, envAPIToken},
		{"bad log level", map[string]string{envSecrets: "x"}, []string{"-log-level", "loud"}, "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServe(io.Discard, io.Discard)
			s.Getenv = func(k string) string { return tt.env[k] }
			err := s.ParseFlags(tt.args)
			if err == nil || !strings.Contains(formatError(err), tt.want) {
				t.Errorf("ParseFlags = %v, want an error mentioning %s", err, tt.want)
			}
		})
	}
	s := NewServe(io.Discard, io.Discard)
	s.Getenv = func(k string) string { return map[string]string{envSecrets: "x", envAPIToken: "t"}[k] }
	if err := s.ParseFlags([]string{"-api-listen", ":8081"}); err != nil {
		t.Errorf("API off loopback with a token: %v", err)
	}
}

// TestBadRequests sends many kinds of bad requests to the real daemon:
// each gets its status code and a JSON error, nothing unauthenticated is
// stored, authentic malformed bodies are kept as dead letters, and the
// daemon keeps serving.
func TestBadRequests(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	good := readFixture(t, "inquiry.started.json")
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	header := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(server.SignatureHeader, v) }
	}
	nested := []byte(strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000))
	unknown := bytes.Replace(readFixture(t, "account.created.json"), []byte(`"account.created"`), []byte(`"account.teleported"`), 1)
	tests := []struct {
		name  string
		body  []byte
		edit  func(*http.Request)
		code  int
		ecode string
		dead  bool // authentic, kept as a dead letter
	}{
		{"empty body", []byte{}, nil, 200, "", true},
		{"truncated JSON", good[:len(good)/2], nil, 200, "", true},
		{"not JSON", []byte("hello"), nil, 200, "", true},
		{"JSON array", []byte(`[{"data":{}}]`), nil, 200, "", true},
		{"deeply nested", nested, nil, 200, "", true},
		{"invalid UTF-8", bytes.Replace(good, []byte("Jane"), []byte("J\xffne"), 1), nil, 200, "", true},
		{"no event id", bytes.Replace(good, []byte(`"id": "evt_`), []byte(`"idx": "evt_`), 1), nil, 200, "", true},
		{"bad created-at", bytes.Replace(good, []byte(`"created-at": "2024-03-15T18:31:00.100Z"`), []byte(`"created-at": "yesterday"`), 1), nil, 200, "", true},
		{"10 MB body", bytes.Repeat([]byte(" "), 10<<20), nil, 413, server.CodePayloadTooLarge, false},
		{"wrong content type", good, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, server.CodeUnsupportedMedia, false},
		{"no content type", good, func(r *http.Request) { r.Header.Del("Content-Type") }, 415, server.CodeUnsupportedMedia, false},
		{"form content type", good, func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, 415, server.CodeUnsupportedMedia, false},
		{"missing signature", good, func(r *http.Request) { r.Header.Del(server.SignatureHeader) }, 401, server.CodeUnauthorized, false},
		{"header with no v1", good, header("t=" + ts), 401, server.CodeUnauthorized, false},
		{"header with no t", good, header("v1=" + server.Sign([]byte(testSecret), ts, good)), 401, server.CodeUnauthorized, false},
		{"non-hex v1", good, header("t=" + ts + ",v1=not-hex-at-all"), 401, server.CodeUnauthorized, false},
		{"two v1 sets, neither matches", good, header("t=" + ts + ",v1=" + server.Sign([]byte("a"), ts, good) + " t=" + ts + ",v1=" + server.Sign([]byte("b"), ts, good)), 401, server.CodeUnauthorized, false},
		{"wrong secret", good, sigAt(good, now, "wbhsec_wrong"), 401, server.CodeUnauthorized, false},
		{"future timestamp", good, sigAt(good, now.Add(time.Hour), testSecret), 401, server.CodeUnauthorized, false},
		{"replayed old signature", good, sigAt(good, now.Add(-time.Hour), testSecret), 401, server.CodeUnauthorized, false},
		{"body changed by one byte", good, func(r *http.Request) {
			changed := bytes.Replace(good, []byte("pending"), []byte("pendinG"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(changed)), int64(len(changed))
		}, 401, server.CodeUnauthorized, false},
		{"garbage signature header", good, header(strings.Repeat("t=,v1=,", 1000)), 401, server.CodeUnauthorized, false},
		{"GET", nil, func(r *http.Request) { r.Method = http.MethodGet }, 405, server.CodeMethodNotAllowed, false},
		{"PUT", good, func(r *http.Request) { r.Method = http.MethodPut }, 405, server.CodeMethodNotAllowed, false},
	}
	dead := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := d.post(tt.body, tt.edit)
			if r.code != tt.code || r.errCode() != tt.ecode {
				t.Errorf("got %d %s, want %d %s (%s)", r.code, r.errCode(), tt.code, tt.ecode, r.raw)
			}
			if tt.dead {
				dead++
				if r.body["outcome"] != "dead_letter" || r.body["event_id"] != nil || r.body["duplicate"] != false {
					t.Errorf("dead letter answered %s, want {event_id: null, outcome: dead_letter, duplicate: false}", r.raw)
				}
				// Persona's retry of the same body: acknowledged again, kept once.
				if again := d.post(tt.body, tt.edit); again.code != 200 || again.body["duplicate"] != true {
					t.Errorf("redelivered dead letter: %d %s, want 200 duplicate", again.code, again.raw)
				}
			}
			if h := d.get("/healthz"); h.code != 200 {
				t.Fatalf("daemon stopped serving: /healthz %d", h.code)
			}
		})
	}
	// An unknown event name is authentic and well formed: stored and
	// acknowledged, never rejected.
	if r := d.post(unknown, nil); r.code != 200 || r.body["outcome"] != "unknown" {
		t.Errorf("unknown event name: %d %s, want 200 unknown", r.code, r.raw)
	}
	st := d.stats()
	if st.Events != 1 || st.DeadLetters != int64(dead) || st.Inquiries != 0 {
		t.Errorf("stored %d events, %d dead letters, %d inquiries; want 1, %d, 0", st.Events, st.DeadLetters, st.Inquiries, dead)
	}
	if !strings.Contains(d.metrics(), "personad_dead_letters_total "+strconv.Itoa(2*dead)+"\n") {
		t.Errorf("/metrics does not count %d dead-letter deliveries", 2*dead)
	}
	if got := strings.Count(d.logs.String(), "authentic body kept as a dead letter"); got != 2*dead {
		t.Errorf("%d dead-letter warnings logged, want %d", got, 2*dead)
	}
	if strings.Contains(d.logs.String(), "Jane") || strings.Contains(d.logs.String(), testSecret) {
		t.Error("logs hold PII or a secret")
	}
}

// TestWebhookFlow: rotation, inflections, reverse order, concurrent
// duplicates, the long poll, the change feed and auth, end to end.
func TestWebhookFlow(t *testing.T) {
	env := defaultEnv()
	env[envSecrets] = testOldSecret + "," + testSecret
	d := startDaemon(t, env)
	files := []string{"inquiry.created.json", "inquiry.started.json", "inquiry.completed.json", "inquiry.approved.json"}

	// A long poll for the decision, started before any event arrives.
	decided := make(chan response, 1)
	go func() { decided <- d.get("/v1/inquiries/inq_kT4xVnR2bPmYwL9sTgD3cExZ/decision?wait=30s") }()

	// Reverse order, each signed during a rotation (old and new set).
	for i := len(files) - 1; i >= 0; i-- {
		body := readFixture(t, files[i])
		r := d.post(body, func(r *http.Request) {
			r.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte("wbhsec_unknown"), []byte(testSecret)))
		})
		if r.code != 200 || r.body["duplicate"] != false {
			t.Fatalf("%s: %d %s", files[i], r.code, r.raw)
		}
	}
	select {
	case r := <-decided:
		if r.code != 200 || r.body["decision"] != "approved" {
			t.Errorf("long poll: %d %s", r.code, r.raw)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not answer")
	}
	// Snake and camel bodies of events already stored are duplicates.
	for _, f := range []string{"snake/inquiry.started.json", "camel/inquiry.approved.json"} {
		if r := d.post(readFixture(t, f), sigAt(readFixture(t, f), time.Now(), testOldSecret)); r.code != 200 || r.body["duplicate"] != true {
			t.Errorf("%s: %d %s, want a duplicate", f, r.code, r.raw)
		}
	}
	// Concurrent duplicates: one stores, the rest are duplicates.
	redacted := readFixture(t, "camel/inquiry.redacted.json")
	var wg sync.WaitGroup
	results := make([]response, 16)
	for i := range results {
		wg.Go(func() { results[i] = d.post(redacted, nil) })
	}
	wg.Wait()
	fresh := 0
	for _, r := range results {
		if r.code != 200 {
			t.Fatalf("concurrent duplicate: %d %s", r.code, r.raw)
		}
		if r.body["duplicate"] == false {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d concurrent deliveries stored the event, want 1", fresh)
	}

	inq := d.get("/v1/inquiries/inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	if inq.code != 200 || inq.body["status"] != "approved" || inq.body["redacted"] != true || inq.body["event_count"] != 5.0 || len(inq.body["anomalies"].([]any)) != 0 {
		t.Errorf("projection: %s", inq.raw)
	}
	events := d.get("/v1/inquiries/inq_kT4xVnR2bPmYwL9sTgD3cExZ/events")
	list, _ := events.body["events"].([]any)
	if len(list) != 5 || list[0].(map[string]any)["name"] != "inquiry.created" || list[4].(map[string]any)["deliveries"] != 16.0 {
		t.Errorf("events: %s", events.raw)
	}
	// Reverse order: the feed tells what the application saw, once each.
	var seqs []string
	after := "0"
	for range 10 {
		r := d.get("/v1/changes?limit=1&after=" + after)
		page := r.body["changes"].([]any)
		if len(page) == 0 {
			break
		}
		c := page[0].(map[string]any)
		seqs = append(seqs, fmt.Sprintf("%v:%v->%v", c["seq"], c["from_status"], c["to_status"]))
		after = strconv.Itoa(int(r.body["next"].(float64)))
	}
	if got := strings.Join(seqs, " "); got != "1:<nil>->approved 2:approved->approved" {
		t.Errorf("change feed %q", got)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+"/v1/changes", nil)
	if r := send(t, req); r.code != 401 {
		t.Errorf("API without a token: %d, want 401", r.code)
	}
}

// TestGracefulShutdown: requests in flight when shutdown starts finish,
// and every acknowledged event is in the database afterwards.
func TestGracefulShutdown(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	tmpl := readFixture(t, "inquiry.started.json")
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	poll := make(chan int, 1)
	pollSent := make(chan struct{})
	// One event first, so that the poll parks at the feed's head: the
	// deliveries below are the same status of the same inquiry and add no
	// change, so the poll is still parked when the shutdown starts.
	first := bytes.Replace(tmpl, []byte("evt_eKxXzJzpfyVVMgAz0EhvxhqW"), []byte("evt_shutdown_first"), 1)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+server.WebhookPath, bytes.NewReader(first))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(first, time.Now(), []byte(testSecret)))
	if r := send(t, req); r.code != http.StatusOK {
		t.Fatalf("first delivery: %d", r.code)
	}
	go func() {
		// The shutdown must find the long poll in flight: signal once its
		// request is on the wire (a connection that has sent a request is
		// not idle to Shutdown).
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(pollSent) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
			http.MethodGet, "http://"+d.APIAddr()+"/v1/changes?after=1&wait=60s", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			poll <- 0
			return
		}
		resp.Body.Close()
		poll <- resp.StatusCode
	}()
	// The poll's request on the wire is not enough: until the server has
	// accepted its connection, closing the listener resets it. Its handler
	// running is.
	<-pollSent
	for deadline := time.Now().Add(10 * time.Second); d.inflight.Load() == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
	}
	for i := range 200 {
		id := fmt.Sprintf("evt_shutdown_%03d", i)
		body := bytes.Replace(tmpl, []byte("evt_eKxXzJzpfyVVMgAz0EhvxhqW"), []byte(id), 1)
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+server.WebhookPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(testSecret)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // refused once shutdown began: Persona retries
			}
			defer resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		})
	}
	// Begin the shutdown once the long poll is sent and the first
	// acknowledgement is in, while the rest are in flight.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	start := time.Now()
	d.stop()
	wg.Wait()
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	if code := <-poll; code != 200 {
		t.Errorf("long poll in flight got %d at shutdown, want an answer (200)", code)
	}
	db, err := store.OpenReadOnly(d.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Events(context.Background(), "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, r := range recs {
		stored[r.EventID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("%s was acknowledged but is not stored", id)
		}
	}
	if len(acked) == 0 {
		t.Error("no request was acknowledged before shutdown")
	}
}

// TestUnavailableAndMetrics: the real daemon answers 503 (so Persona
// retries) when its store cannot commit, and /metrics carries the store's
// figures.
func TestUnavailableAndMetrics(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	if r := d.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.raw)
	}
	raw := d.metrics()
	for _, want := range []string{
		`personad_deliveries_total{code="200",outcome="applied"} 1`,
		`personad_inquiries{status="created"} 1`,
		`personad_commit_batch_size_count 2`, // recording the policy at the first start, then the event
		`personad_database_bytes`,
		`personad_ingest_seconds_count 1`,
		`personad_signature_failures_total{reason="mismatch"} 0`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The database goes away under the running daemon.
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
	if r := d.post(readFixture(t, "inquiry.started.json"), nil); r.code != 503 || r.errCode() != server.CodeUnavailable {
		t.Errorf("post with the store closed: %d %s, want 503", r.code, r.raw)
	}
	if r := d.get("/healthz"); r.code != 503 {
		t.Errorf("/healthz with the store closed: %d, want 503", r.code)
	}
}
