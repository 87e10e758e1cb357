package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// TestEscapedInquiryID: an inquiry id holding "/" or "%", sent escaped,
// is one path segment on every route that takes an id.
func TestEscapedInquiryID(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, id := range []string{"inq/x", "inq%41", "inq x"} {
		if code, v := f.post(t, event("evt_"+id, engine.EventApproved, id, engine.StatusApproved, t0), nil); code != http.StatusOK {
			t.Fatalf("post %q: %d %v", id, code, v)
		}
	}
	for _, tt := range []struct {
		path, id string
	}{
		{"/v1/inquiries/inq%2Fx", "inq/x"},
		{"/v1/inquiries/inq%2fx", "inq/x"},
		{"/v1/inquiries/inq%2541", "inq%41"},
		{"/v1/inquiries/inq%20x", "inq x"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			if code, v := f.get(t, tt.path); code != http.StatusOK || v["id"] != tt.id {
				t.Errorf("GET %s: %d %v, want 200 with id %q", tt.path, code, v, tt.id)
			}
			if code, v := f.get(t, tt.path+"/events"); code != http.StatusOK || len(v["events"].([]any)) != 1 {
				t.Errorf("GET %s/events: %d %v, want its one event", tt.path, code, v)
			}
			if code, v := f.get(t, tt.path+"/decision?wait=0"); code != http.StatusOK || v["decision"] != "approved" {
				t.Errorf("GET %s/decision: %d %v, want approved", tt.path, code, v)
			}
		})
	}
	if code, v := f.get(t, "/v1/inquiries/inq%2Fnone"); code != http.StatusNotFound || errCode(v) != "not_found" {
		t.Errorf("unknown escaped id: %d %v, want 404 not_found", code, v)
	}
}

// TestBadRequestMessages: every 400 the API gives is one line and says
// what would be accepted; a wait too large for a duration is refused,
// never wrapped around into a short or negative one.
func TestBadRequestMessages(t *testing.T) {
	f := newFixture(t, "", nil)
	f.post(t, event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0), nil)
	for _, tt := range []struct {
		path string
		want []string // in the message
	}{
		{"/v1/inquiries?status=bogus", []string{"created", "pending", "completed", "failed", "expired", "needs_review", "approved", "declined"}},
		{"/v1/inquiries?decision=pending", []string{"approved", "declined", "needs_review"}},
		{"/v1/inquiries?limit=0", []string{"1", "500"}},
		{"/v1/inquiries?limit=99999999999999999999", []string{"1", "500"}},
		{"/v1/inquiries?redacted=maybe", []string{"true", "false"}},
		{"/v1/inquiries?cursor=%25%25", []string{"next_cursor"}},
		{"/v1/inquiries?cursor=bm9zbGFzaA", []string{"next_cursor"}},
		{"/v1/changes?limit=1001", []string{"1", "1000"}},
		{"/v1/changes?after=x", []string{"after", "0"}},
		{"/v1/changes?after=99999999999999999999", []string{"after", "0"}},
		{"/v1/changes?wait=forever", []string{"30s", "60s"}},
		{"/v1/changes?wait=-1s", []string{"negative", "60s"}},
		{"/v1/inquiries/inq_1/decision?wait=99999999999999999999", []string{"30s", "60s"}},
		{"/v1/inquiries/inq_1/decision?wait=18446744074", []string{"30s", "60s"}}, // ×1e9 wraps to 0.29 s
		{"/v1/inquiries/inq_1/decision?wait=9223372037", []string{"30s", "60s"}},  // ×1e9 wraps negative
		{"/v1/inquiries/inq_1/decision?wait=999999999999h", []string{"30s", "60s"}},
		{"/v1/inquiries/inq_1/decision?timeout=1s", []string{"wait"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			start := time.Now()
			code, v := f.get(t, tt.path)
			if code != http.StatusBadRequest || errCode(v) != "invalid_request" {
				t.Fatalf("%d %v, want 400 invalid_request", code, v)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the 400 took %v", d)
			}
			msg, _ := v["error"].(map[string]any)["message"].(string)
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("message %q is more than one line", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
		})
	}
	// Large but representable waits are capped, as documented.
	if code, v := f.get(t, "/v1/changes?after=1&wait=0"); code != http.StatusOK {
		t.Errorf("wait=0: %d %v", code, v)
	}
}

// TestHead: every route answers HEAD as it answers GET, without a body.
func TestHead(t *testing.T) {
	f := newFixture(t, "", nil)
	f.post(t, event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0), nil)
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/v1/inquiries/inq_1", http.StatusOK},
		{"/v1/inquiries/inq_1/events", http.StatusOK},
		{"/v1/inquiries/inq_1/decision?wait=0", http.StatusOK},
		{"/v1/inquiries?status=pending", http.StatusOK},
		{"/v1/changes", http.StatusOK},
		{"/healthz", http.StatusOK},
		{"/metrics", http.StatusOK},
		{"/v1/inquiries/inq_none", http.StatusNotFound},
		{"/v1/inquiries?status=bogus", http.StatusBadRequest},
		{"/nowhere", http.StatusNotFound},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Head(f.api.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || len(body) != 0 {
				t.Errorf("HEAD: %d with %d body bytes, want %d and none", resp.StatusCode, len(body), tt.want)
			}
			get, err := http.Get(f.api.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			get.Body.Close()
			if get.StatusCode != resp.StatusCode || get.Header.Get("Content-Type") != resp.Header.Get("Content-Type") {
				t.Errorf("HEAD %d %q, GET %d %q: want the same status and type", resp.StatusCode, resp.Header.Get("Content-Type"),
					get.StatusCode, get.Header.Get("Content-Type"))
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, f.api.URL+"/v1/inquiries/inq_1", nil)
	code, v := do(t, req)
	if msg, _ := v["error"].(map[string]any)["message"].(string); code != http.StatusMethodNotAllowed || !strings.Contains(msg, "GET") || !strings.Contains(msg, "HEAD") {
		t.Errorf("POST: %d %v, want 405 naming GET and HEAD", code, v)
	}
}

// TestAPIRequestMetrics: API requests are counted by route pattern and
// code, never by raw path.
func TestAPIRequestMetrics(t *testing.T) {
	f := newFixture(t, "", nil)
	f.post(t, event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0), nil)
	f.get(t, "/v1/inquiries/inq_1")
	f.get(t, "/v1/inquiries/inq_1")
	f.get(t, "/v1/inquiries/inq_2")
	f.get(t, "/v1/inquiries/inq_1/events")
	f.get(t, "/v1/inquiries?status=bogus")
	f.get(t, "/nowhere")
	resp, err := http.Get(f.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(raw)
	for _, want := range []string{
		`personad_api_requests_total{code="200",route="/v1/inquiries/:id"} 2`,
		`personad_api_requests_total{code="404",route="/v1/inquiries/:id"} 1`,
		`personad_api_requests_total{code="200",route="/v1/inquiries/:id/events"} 1`,
		`personad_api_requests_total{code="400",route="/v1/inquiries"} 1`,
		`personad_api_requests_total{code="404",route="unmatched"} 1`,
	} {
		if !strings.Contains(page, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(page, "inq_1") || strings.Contains(page, "nowhere") {
		t.Error("/metrics holds a raw path")
	}
}

// TestPollsReadOnceMoreAtTheirEnd: a commit the engine could not report
// (its delivery's deadline passed first and it was answered 503) wakes no
// long poll; a poll that ends must still answer with what is committed,
// not with what it read when it parked.
func TestPollsReadOnceMoreAtTheirEnd(t *testing.T) {
	f := newFixture(t, "", nil)
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	if code, _ := f.post(t, event("evt_l1", engine.EventStarted, "inq_late", engine.StatusPending, at), nil); code != http.StatusOK {
		t.Fatalf("first delivery: %d", code)
	}
	// Another engine on the same store commits without this API's engine
	// publishing: as a late commit does.
	other := engine.New(f.store, engine.Policy{})
	type answer struct {
		code int
		body map[string]any
	}
	decision, feed := make(chan answer, 1), make(chan answer, 1)
	go func() {
		code, body := f.get(t, "/v1/inquiries/inq_late/decision?wait=1s")
		decision <- answer{code, body}
	}()
	go func() {
		code, body := f.get(t, "/v1/changes?after=1&wait=1s")
		feed <- answer{code, body}
	}()
	time.Sleep(200 * time.Millisecond) // both park
	if _, err := other.Ingest(context.Background(), engine.Delivery{
		Body: event("evt_l2", engine.EventApproved, "inq_late", engine.StatusApproved, at.Add(time.Minute)), ReceivedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	if a := <-decision; a.code != http.StatusOK || a.body["decision"] != "approved" {
		t.Errorf("decision poll at its end: %d %v, want the committed approval", a.code, a.body)
	}
	if a := <-feed; a.code != http.StatusOK || len(a.body["changes"].([]any)) != 1 {
		t.Errorf("feed poll at its end: %d %v, want the committed change", a.code, a.body)
	}
}
