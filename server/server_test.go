package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

type fixture struct {
	store   *engine.MemoryStore
	eng     *engine.Engine
	webhook *httptest.Server
	api     *httptest.Server
	token   string
}

func newFixture(t *testing.T, token string, tweak func(*server.WebhookConfig)) *fixture {
	t.Helper()
	f := &fixture{store: engine.NewMemoryStore(), token: token}
	f.eng = engine.New(f.store, engine.Policy{})
	cfg := server.WebhookConfig{Engine: f.eng, Secrets: [][]byte{secretA}, MaxBody: 64 << 10}
	if tweak != nil {
		tweak(&cfg)
	}
	wh, err := server.NewWebhookHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.webhook = httptest.NewServer(wh)
	f.api = httptest.NewServer(openapitest.Handler(t, server.NewAPIHandler(server.APIConfig{Engine: f.eng, Token: token})))
	t.Cleanup(func() { f.webhook.Close(); f.api.Close() })
	return f
}

func event(id, name, inquiry string, status engine.Status, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"data":{"type":"event","id":%q,"attributes":{"name":%q,"created-at":%q,"payload":{"data":{"type":"inquiry","id":%q,"attributes":{"status":%q}}}}}}`,
		id, name, at.UTC().Format(engine.TimeFormat), inquiry, status))
}

func (f *fixture) post(t *testing.T, body []byte, header func(http.Header)) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.webhook.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), secretA))
	if header != nil {
		header(req.Header)
	}
	return do(t, req)
}

func (f *fixture) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.api.URL+path, nil)
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: response is not JSON: %q", req.Method, req.URL.Path, raw)
	}
	if resp.StatusCode >= 400 {
		e, _ := v["error"].(map[string]any)
		if e == nil || e["code"] == "" || e["message"] == "" {
			t.Fatalf("error response without {error:{code,message}}: %s", raw)
		}
	}
	return resp.StatusCode, v
}

func errCode(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

var t0 = time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)

func TestWebhookResponses(t *testing.T) {
	f := newFixture(t, "", nil)
	body := event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0)
	code, v := f.post(t, body, nil)
	if code != 200 || v["event_id"] != "evt_1" || v["outcome"] != "applied" || v["duplicate"] != false {
		t.Errorf("first delivery: %d %v", code, v)
	}
	code, v = f.post(t, body, func(h http.Header) { h.Set("Persona-Webhook-Attempts-Made", "2") })
	if code != 200 || v["duplicate"] != true {
		t.Errorf("duplicate: %d %v", code, v)
	}
	recs, _ := f.store.Events(context.Background(), "inq_1")
	if len(recs) != 1 || recs[0].Deliveries != 2 || recs[0].AttemptsMade != 2 {
		t.Errorf("records %+v, want one with 2 deliveries and attempts 2", recs)
	}

	tests := []struct {
		name   string
		body   []byte
		header func(http.Header)
		method string
		code   int
		ecode  string
	}{
		{"no signature", body, func(h http.Header) { h.Del(server.SignatureHeader) }, "", 401, server.CodeUnauthorized},
		{"bad signature", body, func(h http.Header) { h.Set(server.SignatureHeader, "t=1,v1=00") }, "", 401, server.CodeUnauthorized},
		{"wrong content type", body, func(h http.Header) { h.Set("Content-Type", "text/plain") }, "", 415, server.CodeUnsupportedMedia},
		{"GET", nil, nil, http.MethodGet, 405, server.CodeMethodNotAllowed},
		{"too large", bytes.Repeat([]byte(" "), 65<<10), nil, "", 413, server.CodePayloadTooLarge},
		{"authentic but malformed: a dead letter, acknowledged", []byte(`{"data":[]}`), nil, "", 200, ""},
		{"the same again: kept once", []byte(`{"data":[]}`), nil, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.method != "" {
				req, _ := http.NewRequest(tt.method, f.webhook.URL, nil)
				code, v := do(t, req)
				if code != tt.code || errCode(v) != tt.ecode {
					t.Errorf("%d %v, want %d %s", code, v, tt.code, tt.ecode)
				}
				return
			}
			code, v := f.post(t, tt.body, tt.header)
			if code != tt.code || errCode(v) != tt.ecode {
				t.Errorf("%d %v, want %d %s", code, v, tt.code, tt.ecode)
			}
		})
	}
	if dl := f.store.DeadLetters(); len(dl) != 1 || string(dl[0].Body) != `{"data":[]}` || dl[0].Deliveries != 2 {
		t.Errorf("dead letters %+v, want the one authentic malformed body, delivered twice", dl)
	}
	f.store.FailUpdates(errors.New("disk I/O error"))
	if code, v := f.post(t, event("evt_2", engine.EventCompleted, "inq_1", engine.StatusCompleted, t0.Add(time.Minute)), nil); code != 503 || errCode(v) != server.CodeUnavailable {
		t.Errorf("store failure: %d %v, want 503", code, v)
	}
}

func TestWebhookAllowlist(t *testing.T) {
	f := newFixture(t, "", func(c *server.WebhookConfig) {
		c.AllowIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	body := event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0)
	for _, tt := range []struct {
		xff  string
		code int
	}{
		{"", 403},                          // the proxy itself is not allowed
		{"203.0.113.9", 200},               // client behind a trusted proxy
		{"203.0.113.9, 10.1.1.1", 200},     // through two trusted proxies
		{"198.51.100.1", 403},              // client not allowed
		{"203.0.113.9, 198.51.100.1", 403}, // spoofed left-most entry is ignored
		{"not-an-ip", 403},
	} {
		code, _ := f.post(t, body, func(h http.Header) {
			if tt.xff != "" {
				h.Set("X-Forwarded-For", tt.xff)
			}
		})
		if code != tt.code {
			t.Errorf("X-Forwarded-For %q: %d, want %d", tt.xff, code, tt.code)
		}
	}
}

func TestNoSecretFailsClosed(t *testing.T) {
	for _, secrets := range [][][]byte{nil, {}, {[]byte("")}} {
		if _, err := server.NewWebhookHandler(server.WebhookConfig{Engine: engine.New(engine.NewMemoryStore(), engine.Policy{}), Secrets: secrets}); !errors.Is(err, server.ErrNoSecret) {
			t.Errorf("secrets %q: err = %v, want ErrNoSecret", secrets, err)
		}
	}
}

func TestAPI(t *testing.T) {
	f := newFixture(t, "s3cret", nil)
	for i, st := range []engine.Status{engine.StatusCreated, engine.StatusPending, engine.StatusApproved} {
		name := map[engine.Status]string{"created": engine.EventCreated, "pending": engine.EventStarted, "approved": engine.EventApproved}[st]
		if code, v := f.post(t, event(fmt.Sprintf("evt_%d", i), name, "inq_1", st, t0.Add(time.Duration(i)*time.Minute)), nil); code != 200 {
			t.Fatalf("post: %d %v", code, v)
		}
	}
	f.post(t, event("evt_9", engine.EventStarted, "inq_2", engine.StatusPending, t0.Add(time.Hour)), nil)

	t.Run("auth", func(t *testing.T) {
		for _, h := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
			req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/v1/inquiries/inq_1", nil)
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			if code, v := do(t, req); code != 401 || errCode(v) != server.CodeUnauthorized {
				t.Errorf("Authorization %q: %d %v, want 401", h, code, v)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/healthz", nil)
		if code, _ := do(t, req); code != 200 {
			t.Errorf("/healthz without a token: %d, want 200", code)
		}
	})
	t.Run("inquiry", func(t *testing.T) {
		code, v := f.get(t, "/v1/inquiries/inq_1")
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "account_id anomalies created_at decision event_count id last_event_id redacted redacted_at reference_id status tags template_id updated_at"
		if code != 200 || strings.Join(keys, " ") != want || v["status"] != "approved" || v["decision"] != "approved" || v["updated_at"] != "2024-03-15T18:32:00.000Z" {
			t.Errorf("%d %v", code, v)
		}
		if code, v := f.get(t, "/v1/inquiries/inq_none"); code != 404 || errCode(v) != server.CodeNotFound {
			t.Errorf("unknown id: %d %v", code, v)
		}
	})
	t.Run("events", func(t *testing.T) {
		code, v := f.get(t, "/v1/inquiries/inq_1/events")
		events, _ := v["events"].([]any)
		if code != 200 || len(events) != 3 {
			t.Fatalf("%d %v", code, v)
		}
		last := events[2].(map[string]any)
		if last["id"] != "evt_2" || last["outcome"] != "applied" || last["from"] != "pending" || last["to"] != "approved" || last["deliveries"] != 1.0 {
			t.Errorf("last event %v", last)
		}
	})
	t.Run("list", func(t *testing.T) {
		code, v := f.get(t, "/v1/inquiries?limit=1")
		page, _ := v["inquiries"].([]any)
		if code != 200 || len(page) != 1 || page[0].(map[string]any)["id"] != "inq_2" || v["next_cursor"] == nil {
			t.Fatalf("%d %v", code, v)
		}
		code, v = f.get(t, "/v1/inquiries?limit=1&cursor="+v["next_cursor"].(string))
		page, _ = v["inquiries"].([]any)
		if code != 200 || len(page) != 1 || page[0].(map[string]any)["id"] != "inq_1" || v["next_cursor"] != nil {
			t.Fatalf("second page: %d %v", code, v)
		}
		code, v = f.get(t, "/v1/inquiries?decision=approved&redacted=false")
		if page, _ = v["inquiries"].([]any); code != 200 || len(page) != 1 {
			t.Errorf("filtered: %d %v", code, v)
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=x", "redacted=maybe", "status=archived", "decision=pending", "cursor=%25%25"} {
			if code, v := f.get(t, "/v1/inquiries?"+q); code != 400 || errCode(v) != server.CodeInvalidRequest {
				t.Errorf("%s: %d %v, want 400", q, code, v)
			}
		}
	})
	t.Run("decision long poll", func(t *testing.T) {
		done := make(chan map[string]any)
		go func() {
			_, v := f.get(t, "/v1/inquiries/inq_2/decision?wait=20s")
			done <- v
		}()
		time.Sleep(100 * time.Millisecond)
		f.post(t, event("evt_10", engine.EventDeclined, "inq_2", engine.StatusDeclined, t0.Add(2*time.Hour)), nil)
		select {
		case v := <-done:
			if v["decision"] != "declined" {
				t.Errorf("long poll answered %v", v)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("long poll did not answer when the decision came")
		}
		f.post(t, event("evt_11", engine.EventStarted, "inq_3", engine.StatusPending, t0), nil)
		if code, v := f.get(t, "/v1/inquiries/inq_3/decision?wait=50ms"); code != 200 || v["decision"] != nil {
			t.Errorf("timeout: %d %v, want 200 with decision null", code, v)
		}
		if code, _ := f.get(t, "/v1/inquiries/inq_none/decision?wait=50ms"); code != 404 {
			t.Errorf("unknown inquiry: %d, want 404", code)
		}
		if code, _ := f.get(t, "/v1/inquiries/inq_3/decision?wait=forever"); code != 400 {
			t.Errorf("bad wait: %d, want 400", code)
		}
	})
	t.Run("change feed", func(t *testing.T) {
		var seqs []float64
		next := 0.0
		for range 20 {
			_, v := f.get(t, fmt.Sprintf("/v1/changes?after=%d&limit=2", int(next)))
			page, _ := v["changes"].([]any)
			for _, c := range page {
				seqs = append(seqs, c.(map[string]any)["seq"].(float64))
			}
			if next = v["next"].(float64); len(page) == 0 {
				break
			}
		}
		for i, s := range seqs {
			if s != float64(i+1) {
				t.Fatalf("feed seqs %v: missed or repeated a change", seqs)
			}
		}
		done := make(chan map[string]any)
		go func() {
			_, v := f.get(t, fmt.Sprintf("/v1/changes?after=%d&wait=20s", int(next)))
			done <- v
		}()
		time.Sleep(100 * time.Millisecond)
		f.post(t, event("evt_12", engine.EventCompleted, "inq_3", engine.StatusCompleted, t0.Add(time.Minute)), nil)
		select {
		case v := <-done:
			page := v["changes"].([]any)
			if len(page) != 1 || page[0].(map[string]any)["event_id"] != "evt_12" || v["next"].(float64) != next+1 {
				t.Errorf("waited feed answered %v", v)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("feed wait did not answer when a change came")
		}
		if code, v := f.get(t, fmt.Sprintf("/v1/changes?after=%d&wait=50ms", int(next)+1)); code != 200 || len(v["changes"].([]any)) != 0 || v["next"].(float64) != next+1 {
			t.Errorf("empty wait: %d %v", code, v)
		}
		if code, _ := f.get(t, "/v1/changes?after=-1"); code != 400 {
			t.Errorf("after=-1: %d, want 400", code)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"personad_signature_failures_total", "personad_ingest_seconds_bucket", "go_goroutines"} {
			if !bytes.Contains(raw, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestProfiling: /debug/pprof/ exists only when asked for, and sits behind
// the token like the rest of the API.
func TestProfiling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		profiling bool
		auth      string
		want      int
	}{
		{"off", false, "Bearer tok", http.StatusNotFound},
		{"on, no token", true, "", http.StatusUnauthorized},
		{"on, token", true, "Bearer tok", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := httptest.NewServer(server.NewAPIHandler(server.APIConfig{
				Engine: engine.New(engine.NewMemoryStore(), engine.Policy{}), Token: "tok", Profiling: tc.profiling}))
			defer api.Close()
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
				req, _ := http.NewRequest(http.MethodGet, api.URL+path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, tc.want)
				}
				if tc.want == http.StatusOK && path == "/debug/pprof/goroutine?debug=1" && !bytes.Contains(body, []byte("goroutine profile")) {
					t.Errorf("GET %s: not a goroutine profile: %.100s", path, body)
				}
			}
		})
	}
}
