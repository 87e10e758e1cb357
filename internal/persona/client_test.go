package persona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testKey = "persona_sandbox_SECRETKEY123"

// fakeClock is a clock that only moves when the client sleeps, so waits are
// measured exactly and no test sleeps for real.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// newTestClient starts srv's handler and a client on a fake clock, with the
// client-side limit off unless cfg sets one; logs go to the returned buffer.
func newTestClient(tb testing.TB, h http.Handler, cfg Config) (*Client, *fakeClock, *bytes.Buffer) {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	clock := newFakeClock()
	var logs bytes.Buffer
	cfg.BaseURL = srv.URL
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.RatePerMinute == 0 {
		cfg.RatePerMinute = -1
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Sleep = clock.Sleep
	cfg.Now = clock.Now
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c, clock, &logs
}

func inquiryBody(id, status string) string {
	return fmt.Sprintf(`{"data":{"type":"inquiry","id":%q,"attributes":{"status":%q,"created-at":"2026-01-01T00:00:00.000Z"}},"included":[]}`, id, status)
}

func TestNewFailsClosed(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{}},
		{"blank key", Config{APIKey: "  \n"}},
		{"key with newline", Config{APIKey: "abc\ndef"}},
		{"relative base", Config{APIKey: "k", BaseURL: "api.withpersona.com"}},
		{"ftp base", Config{APIKey: "k", BaseURL: "ftp://x"}},
		{"credentials in base", Config{APIKey: "k", BaseURL: "https://u:p@api.withpersona.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := New(tt.cfg); err == nil {
				t.Fatalf("New = %v, nil; want an error", c)
			}
		})
	}
	if _, err := New(Config{}); !errors.Is(err, ErrNoAPIKey) {
		t.Errorf("New without key: got %v, want ErrNoAPIKey", err)
	}
	c, err := New(Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.base.String(), DefaultBaseURL; got != want {
		t.Errorf("default base: got %q, want %q", got, want)
	}
}

func TestHeadersSent(t *testing.T) {
	var got http.Header
	var gotPath, gotQuery string
	c, _, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		gotPath, gotQuery = r.URL.Path, r.URL.RawQuery
		fmt.Fprint(w, inquiryBody("inq_1", "approved"))
	}), Config{})
	status, raw, err := c.GetInquiry(context.Background(), "inq_1")
	if err != nil {
		t.Fatal(err)
	}
	if status != "approved" || !json.Valid(raw) || !strings.Contains(string(raw), `"id":"inq_1"`) {
		t.Errorf("GetInquiry = %q, %s", status, raw)
	}
	if gotPath != "/api/v1/inquiries/inq_1" || gotQuery != "" {
		t.Errorf("path: got %q?%q", gotPath, gotQuery)
	}
	for _, h := range []struct{ name, want string }{
		{"Authorization", "Bearer " + testKey},
		{"Persona-Version", "2025-12-08"},
		{"Key-Inflection", "kebab"},
		{"Accept", "application/json"},
	} {
		if g := got.Get(h.name); g != h.want {
			t.Errorf("header %s: got %q, want %q", h.name, g, h.want)
		}
	}
}

// fakeEvents serves events newest first for one object, pageSize per page,
// with links.next carrying page[after] like Persona.
func fakeEvents(t *testing.T, object string, n, pageSize int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/v1/events" || q.Get("filter[object-id]") != object || q.Get("page[size]") != "100" {
			t.Errorf("unexpected request %s", r.URL)
			http.NotFound(w, r)
			return
		}
		start := 0
		if a := q.Get("page[after]"); a != "" {
			fmt.Sscanf(a, "evt_%d", &start)
			start = n - start + 1
		}
		var items []string
		for i := start; i < n && i < start+pageSize; i++ {
			id := n - i // newest first: evt_n ... evt_1
			items = append(items, fmt.Sprintf(`{"type":"event","id":"evt_%d","attributes":{"name":"inquiry.created","payload":{"data":{"type":"inquiry","id":%q}}}}`, id, object))
		}
		next := "null"
		if start+pageSize < n {
			next = fmt.Sprintf(`"/api/v1/events?page%%5Bafter%%5D=evt_%d&page%%5Bsize%%5D=100"`, n-(start+pageSize)+1)
		}
		fmt.Fprintf(w, `{"data":[%s],"links":{"prev":null,"next":%s}}`, strings.Join(items, ","), next)
	})
}

func TestListEventsPaging(t *testing.T) {
	c, _, _ := newTestClient(t, fakeEvents(t, "inq_A", 7, 3), Config{})
	var ids []string
	after, pages := "", 0
	for {
		page, err := c.ListEvents(context.Background(), "inq_A", after)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page.Events {
			ids = append(ids, e.ID)
			var probe struct{ ID string }
			if err := json.Unmarshal(e.Raw, &probe); err != nil || probe.ID != e.ID {
				t.Errorf("raw of %s is not the item: %s", e.ID, e.Raw)
			}
			if e.Name != "inquiry.created" {
				t.Errorf("name: got %q", e.Name)
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if got, want := strings.Join(ids, ","), "evt_7,evt_6,evt_5,evt_4,evt_3,evt_2,evt_1"; got != want {
		t.Errorf("events: got %s, want %s", got, want)
	}
	if pages != 3 {
		t.Errorf("pages: got %d, want 3", pages)
	}
}

func TestListInquiries(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if got, want := q.Get("filter[created-at-start]"), "2026-01-01T00:00:00Z"; got != want {
			t.Errorf("filter: got %q, want %q", got, want)
		}
		if q.Get("page[after]") == "" {
			fmt.Fprint(w, `{"data":[{"type":"inquiry","id":"inq_2","attributes":{"status":"completed","created-at":"2026-01-03T00:00:00.000Z"}}],"links":{"next":"/api/v1/inquiries?page%5Bafter%5D=inq_2"}}`)
			return
		}
		fmt.Fprint(w, `{"data":[{"type":"inquiry","id":"inq_1","attributes":{"status":"approved"}}],"links":{"next":null}}`)
	}), Config{})
	p1, err := c.ListInquiries(context.Background(), since, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Inquiries) != 1 || p1.Inquiries[0].ID != "inq_2" || p1.Inquiries[0].Status != "completed" || p1.Next != "inq_2" || p1.Inquiries[0].CreatedAt.IsZero() {
		t.Fatalf("page 1: %+v", p1)
	}
	p2, err := c.ListInquiries(context.Background(), since, p1.Next)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Inquiries) != 1 || p2.Inquiries[0].ID != "inq_1" || p2.Next != "" {
		t.Fatalf("page 2: %+v", p2)
	}
}

// scripted answers each request with the next step, then the last one again.
type step struct {
	status int
	header map[string]string
	body   string
	drop   bool // close the connection without an answer
}

func scripted(steps []step, hits *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(hits.Add(1)) - 1
		if i >= len(steps) {
			i = len(steps) - 1
		}
		s := steps[i]
		if s.drop {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range s.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(s.status)
		fmt.Fprint(w, s.body)
	})
}

func TestRetries(t *testing.T) {
	ok := step{status: 200, body: inquiryBody("inq_1", "approved")}
	httpDate := newFakeClock().Now().Add(7 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name       string
		steps      []step
		wantErr    bool
		wantStatus int
		wantHits   int32
		wantSleeps []time.Duration
	}{
		{"500 then ok", []step{{status: 500}, {status: 502}, ok}, false, 0, 3, []time.Duration{500 * time.Millisecond, time.Second}},
		{"dropped connection then ok", []step{{drop: true}, ok}, false, 0, 2, []time.Duration{500 * time.Millisecond}},
		{"500 until retries run out", []step{{status: 503}}, true, 503, 5, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}},
		{"400 not retried", []step{{status: 400}, ok}, true, 400, 1, nil},
		{"401 not retried", []step{{status: 401}, ok}, true, 401, 1, nil},
		{"404 not retried", []step{{status: 404}, ok}, true, 404, 1, nil},
		{"429 Retry-After seconds", []step{{status: 429, header: map[string]string{"Retry-After": "3"}}, ok}, false, 0, 2, []time.Duration{3 * time.Second}},
		{"429 Retry-After date", []step{{status: 429, header: map[string]string{"Retry-After": httpDate}}, ok}, false, 0, 2, []time.Duration{7 * time.Second}},
		{"429 RateLimit-Reset", []step{{status: 429, header: map[string]string{"RateLimit-Reset": "11", "RateLimit-Remaining": "0"}}, ok}, false, 0, 2, []time.Duration{11 * time.Second}},
		{"429 without hints backs off", []step{{status: 429}, ok}, false, 0, 2, []time.Duration{500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			c, clock, _ := newTestClient(t, scripted(tt.steps, &hits), Config{})
			status, _, err := c.GetInquiry(context.Background(), "inq_1")
			if tt.wantErr {
				var apiErr *Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantStatus {
					t.Fatalf("err: got %v, want *Error with status %d", err, tt.wantStatus)
				}
			} else if err != nil || status != "approved" {
				t.Fatalf("GetInquiry = %q, %v", status, err)
			}
			if got := hits.Load(); got != tt.wantHits {
				t.Errorf("requests: got %d, want %d", got, tt.wantHits)
			}
			if got := clock.Sleeps(); fmt.Sprint(got) != fmt.Sprint(tt.wantSleeps) {
				t.Errorf("sleeps: got %v, want %v", got, tt.wantSleeps)
			}
		})
	}
}

func TestErrorCarriesPersonaDetailsAndRequestID(t *testing.T) {
	var hits atomic.Int32
	c, _, logs := newTestClient(t, scripted([]step{{
		status: 404,
		header: map[string]string{"Request-Id": "req_abc123"},
		body:   `{"errors":[{"title":"Record not found","detail":"Could not find inquiry"}]}`,
	}}, &hits), Config{})
	_, _, err := c.GetInquiry(context.Background(), "inq_missing")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("errors.Is(%v, ErrNotFound) = false", err)
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("not an *Error: %v", err)
	}
	if apiErr.RequestID != "req_abc123" || apiErr.Title != "Record not found" || apiErr.Detail != "Could not find inquiry" {
		t.Errorf("error fields: %+v", apiErr)
	}
	for _, want := range []string{"404", "Record not found", "req_abc123"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(logs.String(), "request_id=req_abc123") {
		t.Errorf("failure log lacks the Request-Id: %s", logs)
	}
	var other atomic.Int32
	c2, _, _ := newTestClient(t, scripted([]step{{status: 400}}, &other), Config{})
	if _, _, err := c2.GetInquiry(context.Background(), "inq_1"); errors.Is(err, ErrNotFound) {
		t.Errorf("a 400 matched ErrNotFound")
	}
}

func TestKeyNeverInErrorsOrLogs(t *testing.T) {
	// A hostile or broken server echoes the Authorization header everywhere
	// it can: the error title and detail, and the Request-Id header.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set("Request-Id", "req_"+auth)
		w.WriteHeader(403)
		fmt.Fprintf(w, `{"errors":[{"title":%q,"detail":%q}]}`, "bad key "+auth, "you sent "+auth)
	})
	c, _, logs := newTestClient(t, echo, Config{})
	_, _, err := c.GetInquiry(context.Background(), "inq_1")
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(fmt.Sprintf("%+v", err), testKey) {
		t.Errorf("key in error: %v", err)
	}
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("key in logs: %s", logs)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error should show where the key was scrubbed: %v", err)
	}

	// Network failures after retries, too.
	var hits atomic.Int32
	c2, _, logs2 := newTestClient(t, scripted([]step{{drop: true}}, &hits), Config{MaxRetries: 2})
	_, err = c2.ListEvents(context.Background(), "inq_1", "")
	if err == nil || strings.Contains(err.Error(), testKey) || strings.Contains(logs2.String(), testKey) {
		t.Errorf("network failure: err %v, logs %s", err, logs2)
	}
	if !strings.Contains(logs2.String(), "persona request failed") {
		t.Errorf("network failure not logged: %s", logs2)
	}
}

func TestSlowsDownAsRemainingNearsZero(t *testing.T) {
	tests := []struct {
		name, limit, remaining, reset string
		want                          []time.Duration
	}{
		{"plenty left", "300", "250", "30", nil},
		{"last tenth spread over the reset", "300", "9", "30", []time.Duration{3 * time.Second}},
		{"none left waits for reset", "300", "0", "20", []time.Duration{20 * time.Second}},
		{"unknown limit, few left", "", "4", "10", []time.Duration{2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"RateLimit-Remaining": tt.remaining, "RateLimit-Reset": tt.reset}
			if tt.limit != "" {
				h["RateLimit-Limit"] = tt.limit
			}
			var hits atomic.Int32
			c, clock, _ := newTestClient(t, scripted([]step{{status: 200, header: h, body: inquiryBody("inq_1", "approved")}}, &hits), Config{})
			for range 2 {
				if _, _, err := c.GetInquiry(context.Background(), "inq_1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := clock.Sleeps(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("sleeps before the second request: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClientSideRateLimit(t *testing.T) {
	tests := []struct {
		name      string
		perMinute float64
		want      []time.Duration
	}{
		{"60 per minute", 60, []time.Duration{time.Second, time.Second, time.Second}},
		{"default 300 per minute", 0, []time.Duration{200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond}},
		{"off", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			h := scripted([]step{{status: 200, body: inquiryBody("inq_1", "approved")}}, &hits)
			srv := httptest.NewServer(h)
			defer srv.Close()
			clock := newFakeClock()
			c, err := New(Config{BaseURL: srv.URL, APIKey: testKey, RatePerMinute: tt.perMinute, Sleep: clock.Sleep, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				if _, _, err := c.GetInquiry(context.Background(), "inq_1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := clock.Sleeps(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("waits between 4 requests: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	defer close(release)
	c, _, logs := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), Config{Timeout: 50 * time.Millisecond, MaxRetries: 1})
	_, _, err := c.GetInquiry(context.Background(), "inq_1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err: got %v, want a deadline error", err)
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("attempts: got %d, want 2 (a timeout is retried)", got)
	}
	if !strings.Contains(logs.String(), "persona request failed") {
		t.Errorf("timeout not logged: %s", logs)
	}
}

func TestCallerCancelStopsRetries(t *testing.T) {
	var hits atomic.Int32
	c, _, _ := newTestClient(t, scripted([]step{{status: 500}}, &hits), Config{})
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, _, err := c.GetInquiry(ctx, "inq_1")
	if !errors.Is(err, context.Canceled) || hits.Load() != 1 {
		t.Errorf("got %v after %d requests, want context.Canceled after 1", err, hits.Load())
	}
}

func TestLoadAPIKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "PERSONA_API_KEY" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name    string
		env     string
		file    string
		want    string
		wantErr bool
	}{
		{name: "env", env: "persona_live_abc", want: "persona_live_abc"},
		{name: "env trimmed", env: " persona_live_abc\r\n", want: "persona_live_abc"},
		{name: "file", file: write("plain", "persona_live_f"), want: "persona_live_f"},
		{name: "file with BOM and CRLF", file: write("bom", "\ufeffpersona_live_b\r\n"), want: "persona_live_b"},
		{name: "empty file", file: write("empty", " \r\n"), wantErr: true},
		{name: "BOM only", file: write("bomonly", "\ufeff\n"), wantErr: true},
		{name: "missing file", file: filepath.Join(dir, "nope"), wantErr: true},
		{name: "blank env", env: "  ", wantErr: true},
		{name: "nothing", wantErr: true},
		{name: "both", env: "persona_live_e", file: write("both", "persona_live_g"), wantErr: true},
		{name: "two lines", file: write("two", "persona_live_x\nsecond\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadAPIKey(env(tt.env), tt.file)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("LoadAPIKey = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "persona_live") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

// TestConcurrentCalls shares one client (limiter, pause, logger) across
// goroutines; -race checks the shared state.
func TestConcurrentCalls(t *testing.T) {
	var hits atomic.Int32
	steps := []step{{status: 429, header: map[string]string{"Retry-After": "1"}}, {status: 500}}
	for range 20 {
		steps = append(steps, step{status: 200, header: map[string]string{"RateLimit-Remaining": "3", "RateLimit-Reset": "2"}, body: inquiryBody("inq_1", "approved")})
	}
	c, _, _ := newTestClient(t, scripted(steps, &hits), Config{RatePerMinute: 600})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, _, err := c.GetInquiry(context.Background(), "inq_1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorIs(t *testing.T) {
	for _, tc := range []struct {
		status                 int
		notFound, unauthorized bool
	}{
		{404, true, false},
		{401, false, true},
		{403, false, true},
		{400, false, false},
		{500, false, false},
	} {
		err := error(&Error{Method: "GET", Path: "/api/v1/events", StatusCode: tc.status})
		if got := errors.Is(err, ErrNotFound); got != tc.notFound {
			t.Errorf("%d: errors.Is(ErrNotFound) = %v, want %v", tc.status, got, tc.notFound)
		}
		if got := errors.Is(err, ErrUnauthorized); got != tc.unauthorized {
			t.Errorf("%d: errors.Is(ErrUnauthorized) = %v, want %v", tc.status, got, tc.unauthorized)
		}
	}
}
