package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/notify"
	"github.com/personad/personad/store"
)

// testNotifySecret signs the daemon's notifications in the tests.
var testNotifySecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("personad-e2e-notify-secret-32byt"))

// pushAttempt is one request the test receiver got.
type pushAttempt struct {
	seq  int64 // from the webhook-id
	code int   // what it answered; 0 when personad hung up before the answer
	era  int   // which daemon process sent it
}

// pushReceiver is the application under test: it verifies every request
// with the Standard Webhooks library and answers as mode says.
type pushReceiver struct {
	t   *testing.T
	srv *httptest.Server
	wh  *standardwebhooks.Webhook

	mu       sync.Mutex
	mode     string // "ok", "fail" (503), "hang" (once, past personad's 5 s timeout), "slow"
	era      int
	attempts []pushAttempt
	bodies   map[int64]notify.Message // the last acknowledged message of each seq
	bad      []string
}

func newPushReceiver(t *testing.T) *pushReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testNotifySecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &pushReceiver{t: t, wh: wh, mode: "ok", bodies: map[int64]notify.Message{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *pushReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get(notify.HeaderID)
	var msg notify.Message
	var seq int64
	_, scanErr := fmt.Sscanf(id, "chg_%d", &seq)
	err := r.wh.Verify(body, req.Header)
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	r.mu.Lock()
	if err != nil || scanErr != nil || msg.Data.Seq != seq || msg.Type != "inquiry.changed" {
		r.bad = append(r.bad, fmt.Sprintf("%s: %v %v (seq %d in the body)", id, err, scanErr, msg.Data.Seq))
	}
	mode, era := r.mode, r.era
	if mode == "hang" {
		r.mode = "ok" // once
	}
	r.mu.Unlock()
	code := http.StatusOK
	switch mode {
	case "fail":
		code = http.StatusServiceUnavailable
	case "hang":
		select {
		case <-req.Context().Done(): // personad gave up: nothing is acknowledged
			code = 0
		case <-time.After(10 * time.Second):
		}
	case "slow":
		time.Sleep(15 * time.Millisecond)
	}
	r.mu.Lock()
	r.attempts = append(r.attempts, pushAttempt{seq: seq, code: code, era: era})
	if code == http.StatusOK {
		r.bodies[seq] = msg
	}
	r.mu.Unlock()
	if code != 0 {
		w.WriteHeader(code)
	}
}

func (r *pushReceiver) set(mode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = mode
}

func (r *pushReceiver) nextEra() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.era++
}

// count returns how many attempts were answered with code (-1: any).
func (r *pushReceiver) count(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.attempts {
		if code < 0 || a.code == code {
			n++
		}
	}
	return n
}

// maxAcked is the highest seq acknowledged.
func (r *pushReceiver) maxAcked() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m int64
	for _, a := range r.attempts {
		if a.code == http.StatusOK {
			m = max(m, a.seq)
		}
	}
	return m
}

// waitFor waits up to d for cond.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// feedHead reads the change feed's head from the database, alongside the
// daemon.
func feedHead(t *testing.T, path string) int64 {
	t.Helper()
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := db.ChangesHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPushEndToEnd runs the real daemon with -notify-url against a
// receiver that fails, times out and recovers, across a clean restart
// and a kill -9, and checks with the Standard Webhooks library that every
// change of the feed arrived, in order, signed, none missing, and none
// acknowledged twice except right after the kill.
func TestPushEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out personad's 5 s notification timeout")
	}
	rcv := newPushReceiver(t)
	path := filepath.Join(t.TempDir(), "personad.db")
	env := map[string]string{envSecrets: testSecret, envAPIToken: testToken, envNotifySecret: testNotifySecret}
	args := []string{"-db", path, "-notify-url", rcv.srv.URL + "/hooks/personad?token=s3cret", "-notify-backoff", "20ms"}
	gen := loadgen.New(loadgen.Config{Seed: 13, Open: 20})
	post := func(c *mainChild, n int) {
		t.Helper()
		for range n {
			ev := gen.Next()
			if code := postSigned(t, c.webhook, ev.Body, testSecret); code != http.StatusOK {
				t.Fatalf("event %s answered %d", ev.ID, code)
			}
		}
	}
	caughtUp := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool { h := feedHead(t, path); return h > 0 && rcv.maxAcked() == h })
	}

	// 1: a healthy receiver.
	c := startMainChild(t, env, args...)
	post(c, 60)
	caughtUp("healthy receiver caught up")

	// 2: it fails (503) for a while, then does not answer in time, then
	// recovers; changes keep coming.
	rcv.set("fail")
	post(c, 40)
	waitFor(t, 10*time.Second, "three failed attempts", func() bool { return rcv.count(http.StatusServiceUnavailable) >= 3 })
	rcv.set("hang")
	waitFor(t, 20*time.Second, "an attempt personad gave up on", func() bool { return rcv.count(0) >= 1 })
	post(c, 40)
	caughtUp("recovered receiver caught up")

	// 3: a clean restart (SIGTERM) while it fails; deliveries go on.
	rcv.set("fail")
	post(c, 20)
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return rcv.count(http.StatusServiceUnavailable) >= 4 })
	c.signal(syscall.SIGTERM)
	<-c.exited
	rcv.nextEra()
	rcv.set("ok")
	c = startMainChild(t, env, args...)
	post(c, 40)
	caughtUp("caught up after the restart")

	// 4: kill -9 in the middle of pushing to a slow receiver.
	rcv.set("slow")
	start := rcv.maxAcked()
	post(c, 150)
	waitFor(t, 10*time.Second, "pushing again", func() bool { return rcv.maxAcked() > start+5 })
	if h := feedHead(t, path); rcv.maxAcked() >= h {
		t.Logf("the kill comes after the push caught up (head %d)", h)
	}
	c.cmd.Process.Kill()
	<-c.exited
	rcv.nextEra()
	rcv.set("ok")
	c = startMainChild(t, env, args...)
	post(c, 40)
	caughtUp("caught up after the kill")

	// The metrics say so too.
	req, _ := http.NewRequest(http.MethodGet, c.api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	label := `endpoint="` + rcv.srv.URL + `/hooks/personad?"`
	for _, want := range []string{"personad_notify_lag_changes{" + label + "} 0", "personad_notify_lag_seconds{" + label + "} 0",
		"personad_notify_parked{" + label + "} 0", "personad_notify_delivered_total{" + label + "} "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	if strings.Contains(string(metrics), "s3cret") || strings.Contains(c.logs.String(), "s3cret") ||
		strings.Contains(c.logs.String(), testNotifySecret) {
		t.Error("the endpoint's query (its credentials) or the secret is in the metrics or the logs")
	}
	c.signal(syscall.SIGTERM)
	<-c.exited

	checkPushed(t, rcv, path)
}

// checkPushed checks the receiver's log against the feed.
func checkPushed(t *testing.T, rcv *pushReceiver, path string) {
	t.Helper()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, b := range rcv.bad {
		t.Errorf("bad notification: %s", b)
	}
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	feed, err := db.Changes(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var (
		acked    int64 // the highest seq acknowledged so far
		era      int
		eraFirst = true
		dups     = map[int]int{}
	)
	for i, a := range rcv.attempts {
		if a.era != era {
			era, eraFirst = a.era, true
		}
		// Nothing is sent before the change before it was acknowledged.
		if a.seq > acked+1 {
			t.Fatalf("attempt %d: chg_%d sent with chg_%d the last acknowledged", i, a.seq, acked)
		}
		if a.code != http.StatusOK {
			continue
		}
		switch {
		case a.seq == acked+1:
			acked = a.seq
		case era == 2 && eraFirst || dups[era] > 0 && a.seq <= acked:
			// After the kill, the changes acknowledged but not saved
			// yet come again, in order.
			dups[era]++
		default:
			t.Errorf("attempt %d: chg_%d acknowledged again (era %d, last acknowledged chg_%d)", i, a.seq, era, acked)
		}
		eraFirst = false
	}
	if acked != int64(len(feed)) || len(feed) == 0 {
		t.Fatalf("acknowledged up to chg_%d, the feed has %d changes", acked, len(feed))
	}
	for _, c := range feed {
		m, ok := rcv.bodies[c.Seq]
		if !ok {
			t.Fatalf("chg_%d never acknowledged", c.Seq)
		}
		d := m.Data
		if d.InquiryID != c.InquiryID || d.EventID != c.EventID || d.Redacted != c.Redacted ||
			ptr(d.ToStatus) != string(c.ToStatus) || ptr(d.FromStatus) != string(c.FromStatus) || d.Inquiry == nil || d.Inquiry.ID != c.InquiryID {
			t.Errorf("chg_%d: %+v, want the feed's %+v", c.Seq, d, c)
		}
	}
	t.Logf("%d changes, %d attempts, %d acknowledged again after the kill", len(feed), len(rcv.attempts), dups[2])
}

func ptr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestServeNotifyConfig: serve refuses -notify-url without a usable
// secret, and never takes the secret from a flag.
func TestServeNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notify-secret")
	if err := os.WriteFile(file, []byte(testNotifySecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     string
		args    []string
		wantErr string
	}{
		{"no secret", "", []string{"-notify-url", "https://app.example/h"}, "without a notify secret"},
		{"short secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), []string{"-notify-url", "https://app.example/h"}, "24 to 64"},
		{"not base64", "whsec_???", []string{"-notify-url", "https://app.example/h"}, "base64"},
		{"not http", testNotifySecret, []string{"-notify-url", "ftp://app.example/h"}, "not http"},
		{"bad -notify-from", testNotifySecret, []string{"-notify-url", "https://app.example/h", "-notify-from", "yesterday"}, "-notify-from"},
		{"secret as a flag", "", []string{"-notify-secret", testNotifySecret}, "not defined"},
		{"environment", testNotifySecret, []string{"-notify-url", "https://app.example/h"}, ""},
		{"file", "", []string{"-notify-url", "https://app.example/h", "-notify-secret-file", file}, ""},
		{"no URL, no secret", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServe(io.Discard, io.Discard)
			env := map[string]string{envSecrets: testSecret, envNotifySecret: tc.env}
			s.Getenv = func(k string) string { return env[k] }
			err := s.ParseFlags(append([]string{"-db", filepath.Join(dir, "x.db")}, tc.args...))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ParseFlags: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ParseFlags: %v, want an error with %q", err, tc.wantErr)
			case err != nil && strings.Contains(formatError(err), strings.TrimPrefix(tc.env, "whsec_")) && tc.env != "":
				t.Errorf("the error repeats the secret: %v", formatError(err))
			}
		})
	}
}

// TestNotifyCommand lists the endpoints of a database and resumes a
// parked one.
func TestNotifyCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	for _, u := range []string{"https://user:pw@a.example/h?tok=abc", "https://b.example/h"} {
		if _, err := db.RegisterNotifyEndpoint(ctx, u, false, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.NotifyFailing(ctx, "https://b.example/h", now, "answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := db.ParkNotifyEndpoint(ctx, "https://b.example/h", 0, now, "the endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	code, out, stderr := runCLI(t, "notify", "-db", path)
	if code != 0 || !strings.Contains(out, "https://a.example/h?") || !strings.Contains(out, "PARKED since") || !strings.Contains(out, "410 Gone") {
		t.Errorf("notify: exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out, "pw") || strings.Contains(out, "tok=abc") {
		t.Errorf("notify lists an endpoint's credentials:\n%s", out)
	}
	code, out, stderr = runCLI(t, "notify", "-db", path, "-resume", "https://b.example/h")
	if code != 0 || !strings.Contains(out, "resumed https://b.example/h") {
		t.Errorf("notify -resume: exit %d\n%s%s", code, out, stderr)
	}
	if _, out, _ = runCLI(t, "notify", "-db", path); strings.Contains(out, "PARKED") {
		t.Errorf("still parked after -resume:\n%s", out)
	}
	code, _, stderr = runCLI(t, "notify", "-db", path, "-resume", "https://c.example/h")
	if code != 1 || !strings.Contains(stderr, "no such notify endpoint") || !strings.Contains(stderr, "Try:") {
		t.Errorf("notify -resume of an unknown URL: exit %d\n%s", code, stderr)
	}
	if !bytes.Contains([]byte(stderr), []byte("c.example")) {
		t.Errorf("the error does not name the URL: %s", stderr)
	}
}
