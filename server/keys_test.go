package server_test

import (
	"bytes"
	"errors"
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
