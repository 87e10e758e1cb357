package server_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

func TestAuditHead(t *testing.T) {
	link := sha256.Sum256([]byte("head"))
	tests := []struct {
		name     string
		head     func(context.Context) (int64, [32]byte, error) // nil: no AuditHead
		token    string                                         // sent as the bearer token
		code     int
		errCode  string
		wantSeq  float64
		wantLink string
	}{
		{name: "head", head: func(context.Context) (int64, [32]byte, error) { return 1234, link, nil },
			token: "s3cret", code: 200, wantSeq: 1234, wantLink: fmt.Sprintf("%x", link)},
		{name: "empty log", head: func(context.Context) (int64, [32]byte, error) { return 0, [32]byte{}, nil },
			token: "s3cret", code: 200, wantLink: fmt.Sprintf("%064d", 0)},
		{name: "no token", head: func(context.Context) (int64, [32]byte, error) { return 1, link, nil },
			code: 401, errCode: server.CodeUnauthorized},
		{name: "not configured", token: "s3cret", code: 404, errCode: server.CodeNotFound},
		{name: "store fails", head: func(context.Context) (int64, [32]byte, error) { return 0, [32]byte{}, errors.New("disk on fire") },
			token: "s3cret", code: 500, errCode: server.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
			api := httptest.NewServer(openapitest.Handler(t, server.NewAPIHandler(server.APIConfig{Engine: eng, Token: "s3cret", AuditHead: tt.head})))
			defer api.Close()
			req, _ := http.NewRequest(http.MethodGet, api.URL+"/v1/audit/head", nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			code, v := do(t, req)
			if code != tt.code || errCode(v) != tt.errCode {
				t.Fatalf("got %d %v, want %d %s", code, v, tt.code, tt.errCode)
			}
			if code != 200 {
				return
			}
			if got, want := v, map[string]any{"seq": tt.wantSeq, "chain": tt.wantLink}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("body %v, want %v", got, want)
			}
		})
	}
}
