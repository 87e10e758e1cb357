package main

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestOpenAPIEveryRoute asks the real daemon every route of the document it
// serves, as GET and HEAD, without the token, with a parameter it does not
// take and with a method it does not take: the validating client
// (openapitest) fails the test on any answer the document does not
// describe. A route of the document this build does not serve yet (it
// answers the router's 404) fails, but for openapitest.Pending.
func TestOpenAPIEveryRoute(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	for _, f := range []string{"inquiry.created.json", "inquiry.approved.json", "inquiry.updated-tags.json"} {
		if r := d.post(readFixture(t, f), nil); r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", f, r.code, r.raw)
		}
	}
	served := d.get("/v1/openapi.json")
	if served.code != http.StatusOK || served.body["openapi"] != "3.1.0" {
		t.Fatalf("/v1/openapi.json: %d %.200s", served.code, served.raw)
	}
	paths, _ := served.body["paths"].(map[string]any)
	var routes []string
	for p := range paths {
		routes = append(routes, p)
	}
	sort.Strings(routes)
	if len(routes) < 10 {
		t.Fatalf("the document has %d paths: %v", len(routes), routes)
	}
	client := validated(t)
	base := "http://" + d.APIAddr()
	do := func(method, path string, token bool) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, nil)
		if token {
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			return resp.StatusCode, "" // checked at its headers; it never ends
		}
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, route := range routes {
		path := strings.ReplaceAll(route, "{id}", "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
		item, _ := paths[route].(map[string]any)
		method, wantCode := http.MethodGet, http.StatusOK
		if _, ok := item["post"]; ok {
			// POST /v1/reconcile: this daemon has no Persona API key.
			method, wantCode = http.MethodPost, http.StatusNotFound
		}
		t.Run(route, func(t *testing.T) {
			code, body := do(method, path, true)
			if code == http.StatusNotFound && strings.Contains(body, "no such route") {
				t.Fatalf("%s is documented but not served", route)
			}
			if code != wantCode {
				t.Errorf("%s %s: %d %s", method, path, code, body)
			}
			do(http.MethodHead, path, true)
			do(method, path+"?no_such_parameter=1", true)
			do(http.MethodPost, path, true)
			do(http.MethodGet, path, true)
			if route != "/healthz" {
				if code, _ := do(method, path, false); code != http.StatusUnauthorized {
					t.Errorf("%s %s without the token: %d, want 401", method, path, code)
				}
			}
		})
	}
	// The answers the table above does not reach.
	for _, path := range []string{
		"/v1/inquiries/inq_missing", "/v1/inquiries/inq_missing/events", "/v1/inquiries/inq_missing/decision?wait=0",
		"/v1/changes?after=999", "/v1/changes?after=-1", "/v1/inquiries?status=nope", "/v1/inquiries?limit=1",
		"/v1/inquiries?redacted=false&decision=approved", "/v1/inquiries/inq_kT4xVnR2bPmYwL9sTgD3cExZ/decision?wait=1s",
		"/v1/changes?after=1&limit=1&wait=0", "/no/such/route",
	} {
		do(http.MethodGet, path, true)
	}
}
