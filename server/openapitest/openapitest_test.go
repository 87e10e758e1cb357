package openapitest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/personad/personad/server/openapitest"
)

const inquiry = `{"id":"inq_1","status":"approved","decision":"approved","redacted":false,"redacted_at":null,"reference_id":null,"account_id":null,"template_id":null,"tags":null,"created_at":"2024-03-15T18:30:00.000Z","updated_at":"2024-03-15T18:30:00.000Z","last_event_id":"evt_1","event_count":1,"anomalies":[]}`

// TestCheck pins what the validator lets through: a test must fail on an
// undocumented route, status, field or field type.
func TestCheck(t *testing.T) {
	json := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		wantErr            bool
	}{
		{"documented", "GET", "/v1/inquiries/inq_1", 200, json, inquiry, false},
		{"head", "HEAD", "/v1/inquiries/inq_1", 200, json, "", false},
		{"no such route", "GET", "/v1/nope", 404, json, `{"error":{"code":"not_found","message":"no such route"}}`, false},
		{"method not allowed", "POST", "/v1/inquiries", 405, http.Header{"Content-Type": {"application/json"}, "Allow": {"GET, HEAD"}}, `{"error":{"code":"method_not_allowed","message":"m"}}`, false},
		{"undocumented route", "GET", "/v1/nope", 200, json, `{}`, true},
		{"undocumented method", "POST", "/v1/inquiries", 200, json, `{}`, true},
		{"405 without Allow", "POST", "/v1/inquiries", 405, json, `{"error":{"code":"method_not_allowed","message":"m"}}`, true},
		{"undocumented status", "GET", "/healthz", 418, json, `{"error":{"code":"internal","message":"m"}}`, true},
		{"undocumented field", "GET", "/v1/inquiries/inq_1", 200, json, strings.Replace(inquiry, `"id":`, `"extra":1,"id":`, 1), true},
		{"wrong field type", "GET", "/v1/inquiries/inq_1", 200, json, strings.Replace(inquiry, `"event_count":1`, `"event_count":"1"`, 1), true},
		{"missing field", "GET", "/v1/inquiries/inq_1", 200, json, strings.Replace(inquiry, `"redacted":false,`, ``, 1), true},
		{"undocumented error code", "GET", "/v1/inquiries/inq_1", 404, json, `{"error":{"code":"gone","message":"m"}}`, true},
		{"401 without WWW-Authenticate", "GET", "/v1/changes", 401, json, `{"error":{"code":"unauthorized","message":"m"}}`, true},
		{"undocumented content type", "GET", "/healthz", 200, http.Header{"Content-Type": {"text/html"}}, `ok`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			err := openapitest.Check(req, tt.status, tt.header, []byte(tt.body))
			if got := err != nil; got != tt.wantErr {
				t.Errorf("Check: got error %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}
