package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// The operations tests run the real daemon as a child process: this test
// binary re-executed with mainChildArgsEnv set runs mainExit, as main
// does, so signals take the path they take in production.
const mainChildArgsEnv = "PERSONAD_MAIN_CHILD_ARGS" // a JSON array of arguments

// runMainChild is the child: main with the arguments in args.
func runMainChild(args string) int {
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return mainExit(argv)
}

// mainChild is a personad serve in a child process.
type mainChild struct {
	t                *testing.T
	cmd              *exec.Cmd
	logs             *syncBuffer
	webhook, api     string // base URLs
	exited           chan struct{}
	exitErr          error
	logsDone         chan struct{}
	secret, apiToken string // what the test signs and authenticates with
}

// startMainChild starts "personad serve" with args and env (besides the
// test's own environment) on loopback ports it picks, and waits until it
// serves.
func startMainChild(t *testing.T, env map[string]string, args ...string) *mainChild {
	t.Helper()
	argv, _ := json.Marshal(append([]string{"serve", "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-log-format", "json"}, args...))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The race detector sleeps a second before a process exits; that
	// second is not the daemon's, and a timed shutdown would count it.
	cmd.Env = append(os.Environ(), mainChildArgsEnv+"="+string(argv), "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &mainChild{t: t, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{}), logsDone: make(chan struct{})}
	ready := make(chan map[string]any, 1)
	go func() {
		defer close(c.logsDone)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			c.logs.Write([]byte(line))
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "personad serving" {
				ready <- rec
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-c.logsDone // Wait closes the pipe: read it all first
		c.exitErr = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			cmd.Process.Kill()
			<-c.exited
		}
	})
	select {
	case rec := <-ready:
		c.webhook = "http://" + rec["webhooks"].(string)
		c.api = "http://" + rec["api"].(string)
	case <-c.exited:
		t.Fatalf("daemon exited at start: %v\n%s", c.exitErr, c.logs.String())
	case <-time.After(time.Minute):
		t.Fatalf("daemon did not start within a minute:\n%s", c.logs.String())
	}
	return c
}

// signal sends sig to the child.
func (c *mainChild) signal(sig os.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v: %v", sig, err)
	}
}

// alive reports whether the child is still running.
func (c *mainChild) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// waitLog waits up to 10 s for a JSON log line whose msg is msg, after
// the first skip of them, and returns it.
func (c *mainChild) waitLog(msg string, skip int) map[string]any {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		n := 0
		for _, line := range strings.Split(c.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				if n == skip {
					return rec
				}
				n++
			}
		}
	}
	c.t.Fatalf("no log line %q within 10 s:\n%s", msg, c.logs.String())
	return nil
}

// postSigned posts body signed with secret and returns the status code.
func postSigned(t *testing.T, url string, body []byte, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+server.WebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(secret)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// getWithToken gets an API path with a bearer token and returns the code.
func getWithToken(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// withEventID returns a fixture body with its event id replaced by id.
func withEventID(t *testing.T, fixture, id string) []byte {
	t.Helper()
	body := readFixture(t, fixture)
	var ev struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Data.ID == "" {
		t.Fatalf("%s: no event id (%v)", fixture, err)
	}
	return bytes.ReplaceAll(body, []byte(`"`+ev.Data.ID+`"`), []byte(`"`+id+`"`))
}

// TestShutdownBounded: SIGTERM to the real daemon, with 50 long polls
// parked, 50 uploads stalled halfway through their body and deliveries
// still arriving, ends the process within 5 s with exit code 0; the polls
// get an answer, and every acknowledged event is in the database after.
func TestShutdownBounded(t *testing.T) {
	const (
		polls   = 50
		stalled = 50
		bound   = 5 * time.Second
	)
	path := filepath.Join(t.TempDir(), "personad.db")
	c := startMainChild(t, defaultEnv(), "-db", path)

	gen := loadgen.New(loadgen.Config{Seed: 12, Events: 400, Open: 40})
	var events []*loadgen.Event
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		events = append(events, ev)
	}

	// Long polls for decisions of inquiries that never come: parked until
	// their 60 s wait or the shutdown, whatever else is delivered.
	pollCodes := make(chan int, polls)
	var sent sync.WaitGroup
	for i := range polls {
		sent.Add(1)
		go func() {
			var once sync.Once
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(sent.Done) }}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet,
				fmt.Sprintf("%s/v1/inquiries/inq_never_%02d/decision?wait=60s", c.api, i), nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
			if err != nil {
				once.Do(sent.Done)
				pollCodes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			pollCodes <- resp.StatusCode
		}()
	}

	// Uploads that declare their length, send half of the body with a
	// valid signature, and stall.
	webhookHost := strings.TrimPrefix(c.webhook, "http://")
	for i := range stalled {
		body := withEventID(t, "inquiry.created.json", fmt.Sprintf("evt_stalled_%02d", i))
		conn, err := net.Dial("tcp", webhookHost)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		head := "POST " + server.WebhookPath + " HTTP/1.1\r\nHost: " + webhookHost + "\r\nContent-Type: application/json\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
			server.SignatureHeader + ": " + server.SignatureHeaderValue(body, time.Now(), []byte(testSecret)) + "\r\n\r\n"
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(body[:len(body)/2]); err != nil {
			t.Fatal(err)
		}
	}
	sent.Wait()

	// Real deliveries from 8 senders, still going when SIGTERM arrives.
	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		next    int
		wg      sync.WaitGroup
		sigAt   time.Time
		hundred = make(chan struct{})
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 8 {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(events) {
					mu.Unlock()
					return
				}
				ev := events[next]
				next++
				mu.Unlock()
				code, err := postEvent(client, c.webhook+server.WebhookPath, ev.Body)
				if err != nil {
					return // refused or cut once shutdown began: Persona retries
				}
				mu.Lock()
				if code == http.StatusOK {
					acked[ev.ID] = true
					if len(acked) == 100 {
						close(hundred)
					}
				}
				mu.Unlock()
			}
		})
	}
	select {
	case <-hundred:
	case <-time.After(time.Minute):
		t.Fatal("no 100 acknowledgements within a minute")
	}
	sigAt = time.Now()
	c.signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", c.logs.String())
	}
	took := time.Since(sigAt)
	wg.Wait()
	if took > bound {
		t.Errorf("exited %v after SIGTERM, want within %v", took.Round(time.Millisecond), bound)
	}
	if c.exitErr != nil {
		t.Errorf("exit: %v, want 0\n%s", c.exitErr, c.logs.String())
	}
	for range polls {
		// Unknown inquiries: the answer at the end of the wait is a 404.
		if code := <-pollCodes; code != http.StatusNotFound {
			t.Errorf("a parked long poll got %d at shutdown, want its answer (404)", code)
		}
	}
	stored := storedEvents(t, path)
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if _, ok := stored[id]; !ok {
			t.Errorf("event %s was acknowledged but is not stored", id)
		}
	}
	for i := range stalled {
		if _, ok := stored[fmt.Sprintf("evt_stalled_%02d", i)]; ok {
			t.Errorf("stalled upload %d was stored from half a body", i)
		}
	}
	t.Logf("%d acknowledged, %d stored, exit %v after SIGTERM", len(acked), len(stored), took.Round(time.Millisecond))
}

// TestSIGHUPReloadsKeys: SIGHUP makes the real daemon reread its secrets
// and token files: the new secret and token are accepted, the removed
// ones refused, the process lives on, and the log line gives counts,
// never values. A reload that reads an empty file keeps what was in use.
func TestSIGHUPReloadsKeys(t *testing.T) {
	dir := t.TempDir()
	secrets, token := filepath.Join(dir, "secrets"), filepath.Join(dir, "token")
	const (
		oldSecret, newSecret = "wbhsec_hup_old", "wbhsec_hup_new"
		oldToken, newToken   = "tok_hup_old", "tok_hup_new"
	)
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(secrets, oldSecret+"\n")
	write(token, oldToken+"\n")
	c := startMainChild(t, map[string]string{envSecrets: "", envAPIToken: ""},
		"-db", filepath.Join(dir, "personad.db"), "-webhook-secrets-file", secrets, "-api-token-file", token)
	if code := postSigned(t, c.webhook, withEventID(t, "inquiry.created.json", "evt_hup_1"), oldSecret); code != 200 {
		t.Fatalf("before the reload, the old secret: %d", code)
	}

	// Rotate: the new secret only, and a new token.
	write(secrets, newSecret+"\n")
	write(token, newToken+"\n")
	c.signal(syscall.SIGHUP)
	rec := c.waitLog("reloaded the webhook secrets and the API token", 0)
	if !c.alive() {
		t.Fatalf("SIGHUP ended the daemon:\n%s", c.logs.String())
	}
	if rec["webhook_secrets"] != 1.0 || rec["api_tokens"] != 1.0 {
		t.Errorf("reload log line %v, want webhook_secrets 1 and api_tokens 1 (numbers)", rec)
	}
	tests := []struct {
		name string
		got  func() int
		want int
	}{
		{"new secret", func() int {
			return postSigned(t, c.webhook, withEventID(t, "inquiry.started.json", "evt_hup_2"), newSecret)
		}, 200},
		{"removed secret", func() int {
			return postSigned(t, c.webhook, withEventID(t, "inquiry.started.json", "evt_hup_3"), oldSecret)
		}, 401},
		{"new token", func() int { return getWithToken(t, c.api+"/v1/changes", newToken) }, 200},
		{"old token", func() int { return getWithToken(t, c.api+"/v1/changes", oldToken) }, 401},
	}
	for _, tt := range tests {
		if got := tt.got(); got != tt.want {
			t.Errorf("after the reload, %s: %d, want %d", tt.name, got, tt.want)
		}
	}

	// A reload that finds an empty secrets file changes nothing.
	write(secrets, "\n")
	c.signal(syscall.SIGHUP)
	c.waitLog("reload failed: still checking requests against the secrets and token in use", 0)
	if code := postSigned(t, c.webhook, withEventID(t, "inquiry.completed.json", "evt_hup_4"), newSecret); code != 200 {
		t.Errorf("after a failed reload, the secret in use: %d, want 200", code)
	}
	if code := getWithToken(t, c.api+"/v1/changes", newToken); code != 200 {
		t.Errorf("after a failed reload, the token in use: %d, want 200", code)
	}

	c.signal(syscall.SIGTERM)
	<-c.exited
	if c.exitErr != nil {
		t.Errorf("exit after SIGTERM: %v", c.exitErr)
	}
	logs := c.logs.String()
	for _, secret := range []string{oldSecret, newSecret, oldToken, newToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}

// TestSIGHUPWithEnvironmentKeys: with secrets and token from the
// environment, SIGHUP has nothing to reread; the daemon says so and goes
// on with them.
func TestSIGHUPWithEnvironmentKeys(t *testing.T) {
	c := startMainChild(t, defaultEnv(), "-db", filepath.Join(t.TempDir(), "personad.db"))
	c.signal(syscall.SIGHUP)
	c.waitLog("reload: nothing to reread: the secrets and the token come from the environment, which a running process cannot change; restart personad to change them", 0)
	if code := postSigned(t, c.webhook, readFixture(t, "inquiry.created.json"), testSecret); code != 200 || !c.alive() {
		t.Errorf("after SIGHUP: %d, alive %v; want 200 from a live daemon", code, c.alive())
	}
	c.signal(syscall.SIGTERM)
	<-c.exited
	if c.exitErr != nil {
		t.Errorf("exit after SIGTERM: %v", c.exitErr)
	}
}

// TestKeyFilesWithBOMOrCRLF: secrets and token files saved with a UTF-8
// byte order mark or Windows line endings work as plain ones do.
func TestKeyFilesWithBOMOrCRLF(t *testing.T) {
	tests := []struct {
		name          string
		secrets, tokn string
	}{
		{"plain", testSecret + "\n" + testOldSecret + "\n", testToken + "\n"},
		{"CRLF", testSecret + "\r\n" + testOldSecret + "\r\n", testToken + "\r\n"},
		{"BOM", "\ufeff" + testSecret + "\n" + testOldSecret + "\n", "\ufeff" + testToken + "\n"},
		{"BOM and CRLF", "\ufeff" + testSecret + "\r\n" + testOldSecret + "\r\n", "\ufeff" + testToken + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			secrets, token := filepath.Join(dir, "secrets"), filepath.Join(dir, "token")
			if err := os.WriteFile(secrets, []byte(tt.secrets), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(token, []byte(tt.tokn), 0o600); err != nil {
				t.Fatal(err)
			}
			d := startDaemon(t, map[string]string{}, "-webhook-secrets-file", secrets, "-api-token-file", token)
			if r := d.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
				t.Errorf("signed with the first secret: %d %s", r.code, r.raw)
			}
			body := readFixture(t, "inquiry.started.json")
			if r := d.post(body, sigAt(body, time.Now(), testOldSecret)); r.code != 200 {
				t.Errorf("signed with the second secret: %d %s", r.code, r.raw)
			}
			if r := d.get("/v1/changes"); r.code != 200 {
				t.Errorf("API with the token: %d %s", r.code, r.raw)
			}
		})
	}
}

// logRecords parses the JSON log lines in logs.
func logRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestLogLevel: -log-level chooses the least severe lines written; each
// stored delivery is a debug line (none by default), each refused one a
// warning.
func TestLogLevel(t *testing.T) {
	tests := []struct {
		level                string
		wantStored, wantWarn bool
	}{
		{"debug", true, true},
		{"info", false, true},
		{"warn", false, true},
		{"error", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			d := startDaemon(t, defaultEnv(), "-log-level", tt.level)
			body := readFixture(t, "inquiry.created.json")
			if r := d.post(body, nil); r.code != 200 {
				t.Fatalf("post: %d", r.code)
			}
			if r := d.post(body, sigAt(body, time.Now(), "wbhsec_wrong")); r.code != 401 {
				t.Fatalf("post with a wrong secret: %d", r.code)
			}
			var stored, refused bool
			for _, rec := range logRecords(t, d.logs.String()) {
				stored = stored || rec["msg"] == "webhook stored"
				refused = refused || rec["msg"] == "webhook refused"
			}
			if stored != tt.wantStored || refused != tt.wantWarn {
				t.Errorf("-log-level %s: stored line %v, refused line %v; want %v, %v", tt.level, stored, refused, tt.wantStored, tt.wantWarn)
			}
		})
	}
}

// TestLogNumbersAreNumbers: in JSON logs, every numeric attribute is a
// JSON number, never a string of digits: Persona's retry headers, counts,
// status codes, through deliveries stored, refused, dead-lettered, a
// reload and the shutdown.
func TestLogNumbersAreNumbers(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(secrets, []byte(testSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, map[string]string{envAPIToken: testToken}, "-webhook-secrets-file", secrets, "-log-level", "debug")
	body := readFixture(t, "inquiry.created.json")
	retry := func(r *http.Request) {
		r.Header.Set("Persona-Webhook-Attempts-Made", "2")
		r.Header.Set("Persona-Webhook-Attempts-Left", "6")
		r.Header.Set("Persona-Webhook-First-Attempted-At", "1710527340")
	}
	d.post(body, retry)
	d.post(body, retry) // a duplicate
	d.post(body, sigAt(body, time.Now(), "wbhsec_wrong"))
	d.post([]byte(`{"data":{"type":"event","id":"evt_1"}}`), retry)
	d.post(body, func(r *http.Request) { r.Header.Set("Persona-Webhook-Attempts-Made", "many") })
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	d.stop()

	recs := logRecords(t, d.logs.String())
	found := false
	for _, rec := range recs {
		for k, v := range rec {
			if s, ok := v.(string); ok && k != "msg" {
				if _, err := strconv.ParseFloat(s, 64); err == nil {
					t.Errorf("%q: %s is the string %q, want a number", rec["msg"], k, s)
				}
			}
		}
		if rec["msg"] == "webhook stored" && rec["attempts_made"] != nil {
			found = true
			for k, want := range map[string]float64{"attempts_made": 2, "attempts_left": 6, "first_attempted_at": 1710527340} {
				if got, ok := rec[k].(float64); !ok || got != want {
					t.Errorf("webhook stored: %s = %#v, want the number %v", k, rec[k], want)
				}
			}
		}
	}
	if !found {
		t.Errorf("no \"webhook stored\" line with attempts_made:\n%s", d.logs.String())
	}
}

// TestMetricsContract: /metrics carries the build, deliveries by code
// and an outcome that is never empty, duplicates, dead letters, anomalies
// by kind and redactions; an inquiry row with a status personad does not
// know is counted, and /metrics still answers once the database is gone.
func TestMetricsContract(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	created := readFixture(t, "inquiry.created.json")
	steps := []struct {
		name string
		body []byte
		edit func(*http.Request)
		code int
	}{
		{"created", created, nil, 200},
		{"duplicate", created, nil, 200},
		{"wrong secret", created, sigAt(created, time.Now(), "wbhsec_wrong"), 401},
		{"dead letter", []byte(`{"data":{"type":"event","id":"evt_1"}}`), nil, 200},
		{"approved", readFixture(t, "inquiry.approved.json"), nil, 200},
		{"declined after approval", readFixture(t, "inquiry.declined.json"), nil, 200},
		{"redacted", readFixture(t, "inquiry.redacted.json"), nil, 200},
	}
	for _, s := range steps {
		if r := d.post(s.body, s.edit); r.code != s.code {
			t.Fatalf("%s: %d %s, want %d", s.name, r.code, r.raw, s.code)
		}
	}
	// An odd row, as a hand edit or another version might leave.
	db, err := sql.Open("sqlite", "file:"+d.dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc)
		VALUES ('inq_odd', 'teleported', NULL, 0, 0, 0, '{}')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw := d.metrics()
	for _, want := range []string{
		`personad_build_info{goarch="` + runtime.GOARCH + `",goos="` + runtime.GOOS + `",goversion="` + runtime.Version() + `",revision="`,
		`version="` + Version() + `"} 1`,
		`personad_deliveries_total{code="200",outcome="applied"} `,
		`personad_deliveries_total{code="401",outcome="refused"} 1`,
		`personad_deliveries_total{code="200",outcome="dead_letter"} 1`,
		`personad_duplicate_deliveries_total 1`,
		`personad_dead_letters_total 1`,
		// declined after approved, and the redaction's payload, which
		// says approved, after declined
		`personad_anomalies_total{kind="redecision"} 2`,
		`personad_anomalies_total{kind="rejected_transition"} 0`,
		`personad_redactions_total 1`,
		`personad_inquiries{status="other"} 1`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", raw)
	}

	// The database goes away: a delivery is a 503, unavailable, and
	// /metrics still answers with what it can.
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
	if r := d.post(readFixture(t, "inquiry.started.json"), nil); r.code != 503 {
		t.Fatalf("post with the store closed: %d", r.code)
	}
	raw = d.metrics()
	for _, want := range []string{`personad_deliveries_total{code="503",outcome="unavailable"} 1`, `personad_build_info{`} {
		if !strings.Contains(raw, want) {
			t.Errorf("/metrics with the store closed lacks %s", want)
		}
	}
	if strings.Contains(raw, `outcome=""`) {
		t.Errorf("/metrics has an empty outcome:\n%s", raw)
	}
}
