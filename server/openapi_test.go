package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

// TestOpenAPIServed: the document is served as embedded, behind the
// token like every route but /healthz.
func TestOpenAPIServed(t *testing.T) {
	f := newFixture(t, "s3cret", nil)
	for _, tt := range []struct {
		name, token string
		want        int
	}{{"with the token", "s3cret", 200}, {"without", "", 401}} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/v1/openapi.json", nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if tt.want == 200 && !bytes.Equal(body, server.OpenAPI) {
				t.Errorf("the served document is not the embedded one")
			}
		})
	}
}

// TestOpenAPIExamples: every JSON example in the document is a response
// its own schema accepts, so a reader or a generated client's test never
// learns from a wrong one.
func TestOpenAPIExamples(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
		Components struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(server.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	type response struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	}
	n := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			for status, raw := range op.Responses {
				var r response
				json.Unmarshal(raw, &r)
				if r.Ref != "" {
					json.Unmarshal(doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")], &r)
				}
				ex := r.Content["application/json"].Example
				if ex == nil {
					continue
				}
				n++
				t.Run(method+" "+path+" "+status, func(t *testing.T) {
					req := httptest.NewRequest(strings.ToUpper(method), strings.ReplaceAll(path, "{id}", "inq_kT4xVnR2bPmYwL9sTgD3cExZ"), nil)
					h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Www-Authenticate": {`Bearer realm="personad"`}}
					code := 0
					json.Unmarshal([]byte(status), &code)
					if err := openapitest.Check(req, code, h, ex); err != nil {
						t.Error(err)
					}
				})
			}
		}
	}
	if n < 10 {
		t.Errorf("checked %d examples; the document has more", n)
	}
}
