package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// TestBearerSchemeIsCaseInsensitive: "bearer", "BEARER" and "Bearer" all
// carry the token (RFC 9110 §11.1); the token itself is compared exactly.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, "s3cret", nil)
	for _, tt := range []struct {
		header string
		want   int
	}{
		{"Bearer s3cret", http.StatusOK},
		{"bearer s3cret", http.StatusOK},
		{"BEARER s3cret", http.StatusOK},
		{"bearer S3CRET", http.StatusUnauthorized},
		{"Bearer  s3cret", http.StatusUnauthorized},
		{"Basic s3cret", http.StatusUnauthorized},
		{"bearer", http.StatusUnauthorized},
		{"s3cret", http.StatusUnauthorized},
	} {
		t.Run(tt.header, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/v1/changes", nil)
			req.Header.Set("Authorization", tt.header)
			if got, body := do(t, req); got != tt.want {
				t.Errorf("Authorization %q: %d %v, want %d", tt.header, got, body, tt.want)
			}
		})
	}
}

// TestChangesCursorAhead: a cursor beyond the feed's head is a 409
// cursor_ahead at once, even with a wait, not an empty page; the head
// itself and anything before it are fine.
func TestChangesCursorAhead(t *testing.T) {
	f := newFixture(t, "", nil)
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for i, name := range []string{engine.EventCreated, engine.EventStarted} { // two changes: seq 1 and 2
		st := []engine.Status{engine.StatusCreated, engine.StatusPending}[i]
		if code, body := f.post(t, event("evt_"+string(rune('a'+i)), name, "inq_1", st, at.Add(time.Duration(i)*time.Minute)), nil); code != http.StatusOK {
			t.Fatalf("delivery: %d %v", code, body)
		}
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"after=0", http.StatusOK},
		{"after=1", http.StatusOK},
		{"after=2", http.StatusOK},
		{"after=3", http.StatusConflict},
		{"after=3&wait=30s", http.StatusConflict},
		{"after=900", http.StatusConflict},
	} {
		t.Run(tt.query, func(t *testing.T) {
			start := time.Now()
			code, body := f.get(t, "/v1/changes?"+tt.query)
			if code != tt.want {
				t.Fatalf("%d %v, want %d", code, body, tt.want)
			}
			if code == http.StatusConflict {
				if e, _ := body["error"].(map[string]any); e["code"] != "cursor_ahead" {
					t.Errorf("error %v, want code cursor_ahead", body)
				}
				if time.Since(start) > 5*time.Second {
					t.Errorf("the 409 waited %v", time.Since(start))
				}
			}
		})
	}
}

// TestUnknownQueryParameter: a parameter a route does not take is a 400
// naming it and the valid ones, never silently ignored.
func TestUnknownQueryParameter(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/v1/inquiries?status=approved", http.StatusOK},
		{"/v1/inquiries?staus=approved", http.StatusBadRequest},
		{"/v1/inquiries?status=approved&Limit=5", http.StatusBadRequest},
		{"/v1/changes?after=0&limit=5", http.StatusOK},
		{"/v1/changes?since=0", http.StatusBadRequest},
		{"/v1/inquiries/inq_1/decision?timeout=1s", http.StatusBadRequest},
		{"/v1/inquiries/inq_1?x=1", http.StatusBadRequest},
	} {
		t.Run(tt.path, func(t *testing.T) {
			code, body := f.get(t, tt.path)
			if code != tt.want {
				t.Fatalf("%d %v, want %d", code, body, tt.want)
			}
			if code == http.StatusBadRequest {
				e, _ := body["error"].(map[string]any)
				if msg, _ := e["message"].(string); e["code"] != "invalid_request" || !strings.Contains(msg, "unknown query parameter") || !strings.Contains(msg, "takes") {
					t.Errorf("error %v, want invalid_request naming the parameter and the valid ones", body)
				}
			}
		})
	}
}
