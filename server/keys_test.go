package server_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// TestKeysSwap: handlers given Keys check each request against the keys
// of the moment; a swap that would leave no secret or take the token
// away is refused and changes nothing.
func TestKeysSwap(t *testing.T) {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
	keys, err := server.NewKeys([][]byte{[]byte("old")}, "tok_old")
	if err != nil {
		t.Fatal(err)
	}
	webhook, err := server.NewWebhookHandler(server.WebhookConfig{Engine: eng, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	api := server.NewAPIHandler(server.APIConfig{Engine: eng, Keys: keys})
	body := []byte(`{"data":{"type":"event","id":"evt_keys"}}`) // a dead letter: authentic, unreadable
	post := func(secret string) int {
		req := httptest.NewRequest(http.MethodPost, server.WebhookPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(secret)))
		w := httptest.NewRecorder()
		webhook.ServeHTTP(w, req)
		return w.Code
	}
	get := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/changes", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		return w.Code
	}
	check := func(when string, secrets map[string]int, tokens map[string]int) {
		t.Helper()
		for s, want := range secrets {
			if got := post(s); got != want {
				t.Errorf("%s: signed with %q: %d, want %d", when, s, got, want)
			}
		}
		for tok, want := range tokens {
			if got := get(tok); got != want {
				t.Errorf("%s: token %q: %d, want %d", when, tok, got, want)
			}
		}
	}
	check("before", map[string]int{"old": 200, "new": 401}, map[string]int{"tok_old": 200, "tok_new": 401, "": 401})
	if err := keys.Set([][]byte{[]byte("new")}, "tok_new"); err != nil {
		t.Fatal(err)
	}
	check("after the swap", map[string]int{"old": 401, "new": 200}, map[string]int{"tok_old": 401, "tok_new": 200, "": 401})
	for _, tc := range []struct {
		name    string
		secrets [][]byte
		token   string
		want    error
	}{
		{"no secret", nil, "tok_x", server.ErrNoSecret},
		{"empty secret", [][]byte{[]byte("x"), {}}, "tok_x", server.ErrNoSecret},
		{"no token", [][]byte{[]byte("x")}, "", server.ErrNoToken},
	} {
		if err := keys.Set(tc.secrets, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("Set with %s = %v, want %v", tc.name, err, tc.want)
		}
	}
	check("after refused swaps", map[string]int{"x": 401, "new": 200}, map[string]int{"tok_x": 401, "tok_new": 200})
}

// TestStreamEndsWhenItsTokenIsRotatedAway: a stream outlives any long
// poll, so it asks for the token again as it goes: once a reload swapped
// its token out, it gets no further change and ends.
func TestStreamEndsWhenItsTokenIsRotatedAway(t *testing.T) {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
	keys, err := server.NewKeys([][]byte{[]byte("secret")}, "tok_old")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.NewAPIHandler(server.APIConfig{Engine: eng, Keys: keys, StreamHeartbeat: 20 * time.Millisecond}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/changes/stream", nil)
	req.Header.Set("Authorization", "Bearer tok_old")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	if err := keys.Set([][]byte{[]byte("secret")}, "tok_new"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	body := []byte(`{"data":{"type":"event","id":"evt_rot","attributes":{"name":"inquiry.approved","created-at":"` + at.Format(engine.TimeFormat) +
		`","payload":{"data":{"type":"inquiry","id":"inq_rot","attributes":{"status":"approved"}}}}}}`)
	if _, err := eng.Ingest(t.Context(), engine.Delivery{Body: body, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(resp.Body); done <- b }()
	select {
	case b := <-done:
		if bytes.Contains(b, []byte("inq_rot")) {
			t.Errorf("a stream whose token was rotated away got a change:\n%s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after its token was rotated away")
	}
}
