package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

// reasonError is a Health error naming its reason, as store.HealthError does.
type reasonError struct{ code, msg string }

func (e reasonError) Error() string                        { return e.msg + ": /var/lib/secret/path detail" }
func (e reasonError) HealthReason() (code, message string) { return e.code, e.msg }

func TestHealthz(t *testing.T) {
	tests := []struct {
		name     string
		health   func(context.Context) error
		wantCode int
		wantErr  string // error code in the body
		wantMsg  string
	}{
		{"healthy", func(context.Context) error { return nil }, 200, "", ""},
		{"named reason", func(context.Context) error { return reasonError{"disk_low", "3.0 MiB free"} }, 503, "disk_low", "3.0 MiB free"},
		{"other error", func(context.Context) error { return errors.New("boom at /some/path") }, 503, server.CodeUnavailable, "database not writable"},
		{"never answers", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, 503, server.CodeUnavailable, "the database did not answer within 900ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
			api := httptest.NewServer(openapitest.Handler(t, server.NewAPIHandler(server.APIConfig{Engine: eng, Token: "s3cret", Health: tt.health})))
			defer api.Close()
			start := time.Now()
			resp, err := http.Get(api.URL + "/healthz") // no token: probes have none
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if took := time.Since(start); took > time.Second {
				t.Errorf("/healthz took %v, want under a second", took)
			}
			var body struct {
				Status string `json:"status"`
				Error  struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode || body.Error.Code != tt.wantErr || body.Error.Message != tt.wantMsg {
				t.Errorf("/healthz: %d %+v, want %d code %q message %q", resp.StatusCode, body, tt.wantCode, tt.wantErr, tt.wantMsg)
			}
			if tt.wantCode == 200 && body.Status != "ok" {
				t.Errorf("/healthz status %q, want ok", body.Status)
			}
		})
	}
}
