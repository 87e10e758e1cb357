// Package openapitest holds personad's query API to its OpenAPI document
// (server.OpenAPI) in tests: every response a test gets, through Transport
// or Handler, is validated against the document with
// github.com/pb33f/libopenapi-validator, which implements OpenAPI 3.1
// (JSON Schema 2020-12). A route, method, status code, content type or
// field the document does not describe fails the test, so the document
// cannot drift from the handlers.
//
// Only the tests import this package: the validator is not linked into
// the personad binary.
package openapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/personad/personad/server"
)

// The document and two validators built from it once per test binary:
// full checks the body too; head checks status and headers only, for HEAD
// (no body) and event streams (a body that never ends).
var load = sync.OnceValues(func() (*validators, error) {
	doc, err := libopenapi.NewDocument(server.OpenAPI)
	if err != nil {
		return nil, err
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	checker, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if ok, errs := checker.ValidateDocument(); !ok {
		return nil, fmt.Errorf("server/openapi.json is not a valid OpenAPI document: %s", describe(errs))
	}
	full := validator.NewValidatorFromV3Model(&model.Model, config.WithFormatAssertions())
	head := validator.NewValidatorFromV3Model(&model.Model, config.WithoutResponseBodyValidation())
	return &validators{doc: &model.Model, full: full, head: head}, nil
})

type validators struct {
	doc        *v3.Document
	full, head validator.Validator
	mu         sync.Mutex // the validators' caches are not documented as safe for concurrent use
}

// Check validates one response of the query API: status, headers and,
// but for HEAD and text/event-stream, body. The request is the one the
// response answers; body is the whole body read.
//
// Two answers are not operations of the document and are checked here: a
// path that is no route must be a 404 not_found, and a method a route
// does not take a 405 method_not_allowed with an Allow header (the
// document's description promises both). The webhook receiver
// (server.WebhookPath, another listener) and /debug/pprof/ are not part
// of the query API and are not checked.
func Check(req *http.Request, status int, header http.Header, body []byte) error {
	p := req.URL.Path
	if p == server.WebhookPath || strings.HasPrefix(p, "/debug/pprof/") {
		return nil
	}
	v, err := load()
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	item, _, _ := paths.FindPath(req, v.doc, nil)
	switch {
	case item == nil:
		if status == http.StatusNotFound {
			return errorBody(header, body, server.CodeNotFound)
		}
		return fmt.Errorf("%s %s: the path is not in server/openapi.json, yet it answered %d", req.Method, p, status)
	case operation(req.Method, item) == nil:
		if status == http.StatusMethodNotAllowed && header.Get("Allow") != "" {
			return errorBody(header, body, server.CodeMethodNotAllowed)
		}
		return fmt.Errorf("%s %s: the method is not in server/openapi.json, yet it answered %d", req.Method, p, status)
	}
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	val := v.full
	if ct, _, _ := mime.ParseMediaType(header.Get("Content-Type")); req.Method == http.MethodHead || ct == "text/event-stream" {
		val = v.head
	}
	if ok, errs := val.ValidateHttpResponse(req, resp); !ok {
		return fmt.Errorf("%s %s: %d does not match server/openapi.json: %s\nbody: %.2000s", req.Method, req.URL.RequestURI(), status, describe(errs), body)
	}
	return nil
}

// operation is the operation a method selects, GET for HEAD (every GET
// route answers HEAD).
func operation(method string, item *v3.PathItem) *v3.Operation {
	switch method {
	case http.MethodGet, http.MethodHead:
		return item.Get
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	case http.MethodPatch:
		return item.Patch
	case http.MethodDelete:
		return item.Delete
	case http.MethodOptions:
		return item.Options
	}
	return nil
}

// errorBody checks the error body of an answer the document describes in
// prose only.
func errorBody(header http.Header, body []byte, code string) error {
	if len(body) == 0 { // HEAD
		return nil
	}
	if ct, _, _ := mime.ParseMediaType(header.Get("Content-Type")); ct != "application/json" {
		return fmt.Errorf("a %s answer has content type %q, not application/json", code, ct)
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("a %s answer is not {\"error\":{\"code\",\"message\"}}: %v: %s", code, err, body)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		return fmt.Errorf("want error code %q with a message, got %s", code, body)
	}
	return nil
}

func describe(errs any) string {
	b, _ := json.MarshalIndent(errs, "", "  ")
	return string(b)
}

// Transport returns a RoundTripper that sends with next
// (http.DefaultTransport when nil) and validates each response with Check,
// reporting a mismatch with tb.Errorf. The body is read whole and handed
// on, but for an event stream, which is checked at its headers and handed
// on as it comes.
func Transport(tb testing.TB, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{tb, next}
}

type roundTripper struct {
	tb   testing.TB
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/event-stream" {
		if err := Check(req, resp.StatusCode, resp.Header, nil); err != nil {
			rt.tb.Errorf("openapi: %v", err)
		}
		return resp, nil
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// A body cut short (a test closing the connection) is no answer to check.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return resp, nil
	}
	if err := Check(req, resp.StatusCode, resp.Header, body); err != nil {
		rt.tb.Errorf("openapi: %v", err)
	}
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Handler wraps the query API handler h so that every response it writes
// is validated with Check when the handler returns (an event stream when
// its headers are written), reporting a mismatch with tb.Errorf.
func Handler(tb testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, tb: tb, req: r}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if rec.stream {
			return
		}
		if err := Check(r, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			tb.Errorf("openapi: %v", err)
		}
	})
}

// recorder passes a response on and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	stream bool
	body   bytes.Buffer
	tb     testing.TB
	req    *http.Request
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		if ct, _, _ := mime.ParseMediaType(r.Header().Get("Content-Type")); ct == "text/event-stream" {
			r.stream = true
			if err := Check(r.req, code, r.Header(), nil); err != nil {
				r.tb.Errorf("openapi: %v", err)
			}
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if !r.stream {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes a flush on, for event streams and long polls.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
