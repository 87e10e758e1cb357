// Package personatest is a fake of the part of Persona's REST API that
// personad's client reads, for tests in any package:
//
//   - GET /api/v1/events with filter[object-id], filter[name] (a comma
//     list), page[size] and page[after];
//   - GET /api/v1/inquiries with filter[created-at-start] (inclusive),
//     filter[status] (a comma list), page[size] and page[after];
//   - GET /api/v1/inquiries/{id}.
//
// It checks what Persona checks and the client must get right: the bearer
// key (401), Persona-Version and Key-Inflection (400), page[size] 1–100
// (400), unknown paths (404) and methods other than GET (405), all with
// Persona-style {"errors":[{"title","detail"}]} bodies and a Request-Id
// header. It can rate-limit like Persona (a sliding 60-second window with
// Retry-After and the RateLimit-* headers) and inject 429s and 500s at
// fixed request counts, and it counts what it received so a test can check
// the client's pacing.
//
// Data comes in as webhook bodies or Events API items (AddWebhookBody,
// AddEvent); the inquiries are what those events' payloads say, with
// SetStatus to make the API disagree with the webhooks. Lists are newest
// first (created-at, ties by id descending); page[after] is the id of the
// last item seen, and links.next is null exactly when no matching item
// follows the page, so a page that empties the list has next null.
//
// A request is checked in this order: the rate limit, the injected faults,
// the key, the two headers, the path, the method, the query.
//
// It does not fake: writes of any kind, other resources (accounts, cases,
// verifications, reports; their events are stored and listed, but no
// endpoint serves the objects), "included" side-loads (always empty),
// relationships beyond what the payloads carry, the snake and camel key
// inflections, API versions other than APIVersion, page[before], filters
// not listed above, event retention (events are kept forever), or
// Persona's exact error texts.
package personatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the only Persona-Version the fake answers; any other value,
// or none, gets a 400. It is the version personad's client pins.
const APIVersion = "2025-12-08"

// Paging bounds, as Persona documents them.
const (
	// DefaultPageSize is the page size when page[size] is absent.
	DefaultPageSize = 10
	// MaxPageSize is the largest page[size] accepted.
	MaxPageSize = 100
)

// rateWindow is the length of the sliding window RatePerMinute applies to.
const rateWindow = time.Minute

// Options configures a Server. Only APIKey is required.
type Options struct {
	// APIKey is the bearer key the fake accepts: a request without
	// "Authorization: Bearer APIKey" gets a 401.
	APIKey string
	// RatePerMinute is the rate limit: 0 means unlimited; otherwise a
	// request that would make more than RatePerMinute accepted requests
	// arrive within the trailing 60 seconds gets a 429 with Retry-After
	// (whole seconds, at least 1) and RateLimit-Limit, RateLimit-Remaining
	// and RateLimit-Reset. Requests it rejects do not use up the budget.
	// Every other answer carries the RateLimit-* headers too.
	RatePerMinute int
	// Burst429Every makes every Nth request (counting all requests, 1-based)
	// answer 429 with Retry-After: 1, regardless of the rate; 0 never does.
	Burst429Every int
	// Fail500Every makes every Nth request answer 500; 0 never does. When a
	// request is due for both, the 429 wins.
	Fail500Every int
	// Now is the clock for arrival times and the rate window; time.Now
	// when nil. It should not go backwards.
	Now func() time.Time
}

// Server is a running fake Persona API. Its methods are safe for concurrent
// use, also while requests are being served.
type Server struct {
	// URL is the base URL without /api/v1, e.g. "http://127.0.0.1:43215":
	// what the client takes as its BaseURL.
	URL string

	ts   *httptest.Server
	opts Options
	now  func() time.Time

	mu sync.Mutex
	traffic
	data
}

// traffic is what the server counts about requests; guarded by Server.mu.
type traffic struct {
	requests    int
	paths       map[string]int
	arrivals    []time.Time // every request
	accepted    []time.Time // requests the rate limit let through
	windowFrom  int         // first index of accepted still inside the rate window
	rateLimited int
}

// New starts a fake on a local port; call Close when done. It panics when
// opts has no APIKey or a negative count, since that is a bug in the test.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		panic("personatest: Options.APIKey is required")
	}
	if opts.RatePerMinute < 0 || opts.Burst429Every < 0 || opts.Fail500Every < 0 {
		panic("personatest: negative RatePerMinute, Burst429Every or Fail500Every")
	}
	s := &Server{opts: opts, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.paths = make(map[string]int)
	s.data = newData()
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.ts.URL
	return s
}

// Close shuts the server down and waits for requests in flight.
func (s *Server) Close() { s.ts.Close() }

// Requests returns how many requests arrived, rejected ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// RequestsTo returns how many requests had exactly this URL path (without
// the query), e.g. "/api/v1/inquiries".
func (s *Server) RequestsTo(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

// RequestsWithPrefix returns how many requests had a URL path starting with
// prefix, e.g. "/api/v1/inquiries/" for the single-inquiry lookups.
func (s *Server) RequestsWithPrefix(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.paths {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// RateLimited returns how many 429s the fake answered because RatePerMinute
// was exceeded; the injected Burst429Every ones are not counted.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rateLimited
}

// MaxInWindow returns the largest number of accepted requests (all but the
// RatePerMinute 429s) whose arrival times fall within one window [t, t+w)
// of length w, over all t: the peak rate a client reached. It is 0 for
// w <= 0. MaxInWindow(time.Minute) never exceeds a nonzero RatePerMinute.
func (s *Server) MaxInWindow(w time.Duration) int {
	s.mu.Lock()
	times := slices.Clone(s.accepted)
	s.mu.Unlock()
	if w <= 0 {
		return 0
	}
	slices.SortFunc(times, time.Time.Compare)
	best, i := 0, 0
	for j := range times {
		for times[j].Sub(times[i]) >= w {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

// ArrivalTimes returns the arrival time of every request, rejected ones
// included, in the order they arrived.
func (s *Server) ArrivalTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrivals)
}

// response is an answer computed under the lock and written after it, so a
// slow reader never holds up other requests.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	resp := s.respond(r)
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	w.Write(resp.body)
}

// respond counts the request, applies the rate limit, the injected faults
// and the header checks, in that order, and then routes it.
func (s *Server) respond(r *http.Request) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.requests++
	n := s.requests
	s.paths[r.URL.Path]++
	s.arrivals = append(s.arrivals, now)
	h := http.Header{}
	h.Set("Request-Id", fmt.Sprintf("req_fake%016d", n))

	if limit := s.opts.RatePerMinute; limit > 0 {
		s.slideWindow(now)
		inWindow := len(s.accepted) - s.windowFrom
		if inWindow >= limit {
			s.rateLimited++
			wait := strconv.Itoa(s.resetSeconds(now))
			h.Set("Retry-After", wait)
			h.Set("RateLimit-Limit", strconv.Itoa(limit))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", wait)
			return errorResponse(h, http.StatusTooManyRequests, "Too Many Requests",
				fmt.Sprintf("Rate limit of %d requests per minute exceeded", limit))
		}
		s.accepted = append(s.accepted, now)
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(limit-inWindow-1))
		h.Set("RateLimit-Reset", strconv.Itoa(s.resetSeconds(now)))
	} else {
		s.accepted = append(s.accepted, now)
	}

	switch {
	case s.opts.Burst429Every > 0 && n%s.opts.Burst429Every == 0:
		h.Set("Retry-After", "1")
		return errorResponse(h, http.StatusTooManyRequests, "Too Many Requests", "Injected rate-limit burst")
	case s.opts.Fail500Every > 0 && n%s.opts.Fail500Every == 0:
		return errorResponse(h, http.StatusInternalServerError, "Internal Server Error", "Injected failure")
	}

	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		return errorResponse(h, http.StatusUnauthorized, "Unauthorized", "Must be authenticated to access this endpoint")
	}
	if v := r.Header.Get("Persona-Version"); v != APIVersion {
		return errorResponse(h, http.StatusBadRequest, "Bad Request",
			fmt.Sprintf("Persona-Version %q is not supported; the fake speaks %s", v, APIVersion))
	}
	if v := r.Header.Get("Key-Inflection"); v != "kebab" {
		return errorResponse(h, http.StatusBadRequest, "Bad Request",
			fmt.Sprintf("Key-Inflection %q is not supported; the fake speaks kebab", v))
	}

	path := r.URL.Path
	var route func(url.Values) response
	switch {
	case path == "/api/v1/events":
		route = s.listEvents
	case path == "/api/v1/inquiries":
		route = s.listInquiries
	case strings.HasPrefix(path, "/api/v1/inquiries/"):
		id := strings.TrimPrefix(path, "/api/v1/inquiries/")
		if id == "" || strings.Contains(id, "/") {
			return errorResponse(h, http.StatusNotFound, "Not Found", "No route matches "+path)
		}
		route = func(url.Values) response { return s.getInquiry(id) }
	default:
		return errorResponse(h, http.StatusNotFound, "Not Found", "No route matches "+path)
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		return errorResponse(h, http.StatusMethodNotAllowed, "Method Not Allowed", r.Method+" is not supported here")
	}
	resp := route(r.URL.Query())
	for k, v := range h {
		resp.header[k] = v
	}
	return resp
}

// slideWindow drops the accepted arrivals at or before now-60s from the
// rate window, which is (now-60s, now].
func (s *Server) slideWindow(now time.Time) {
	cutoff := now.Add(-rateWindow)
	for s.windowFrom < len(s.accepted) && !s.accepted[s.windowFrom].After(cutoff) {
		s.windowFrom++
	}
}

// resetSeconds is how long until the oldest request in the window leaves it,
// in whole seconds rounded up, at least 1.
func (s *Server) resetSeconds(now time.Time) int {
	if s.windowFrom >= len(s.accepted) {
		return 1
	}
	d := s.accepted[s.windowFrom].Add(rateWindow).Sub(now)
	return max(1, int(math.Ceil(d.Seconds())))
}

// errorResponse is a Persona-style error answer.
func errorResponse(h http.Header, status int, title, detail string) response {
	type apiError struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	body, _ := json.Marshal(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{title, detail}}})
	return response{status: status, header: h, body: body}
}

// okResponse is a 200 with body.
func okResponse(body []byte) response {
	return response{status: http.StatusOK, header: http.Header{}, body: body}
}

// pageSize reads page[size]: DefaultPageSize when absent, an error outside
// 1..MaxPageSize.
func pageSize(q url.Values) (int, error) {
	v, ok := q["page[size]"]
	if !ok {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, fmt.Errorf("page[size] must be an integer from 1 to %d, got %q", MaxPageSize, v[0])
	}
	return n, nil
}

// nameSet reads a comma list filter; nil when absent or empty.
func nameSet(v string) map[string]bool {
	if v == "" {
		return nil
	}
	set := make(map[string]bool)
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			set[n] = true
		}
	}
	return set
}

// listBody renders {"data":[items],"links":{"prev":null,"next":next}},
// next being null when empty.
func listBody(items []json.RawMessage, next string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString(`],"links":{"prev":null,"next":`)
	if next == "" {
		b.WriteString("null")
	} else {
		n, _ := json.Marshal(next)
		b.Write(n)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// nextLink is path?query with page[after] set to after, or "" when no
// items remain.
func nextLink(path string, q url.Values, size int, after string, more bool) string {
	if !more {
		return ""
	}
	next := url.Values{}
	for _, k := range []string{"filter[object-id]", "filter[name]", "filter[created-at-start]", "filter[status]"} {
		if v, ok := q[k]; ok {
			next[k] = v
		}
	}
	next.Set("page[size]", strconv.Itoa(size))
	next.Set("page[after]", after)
	return path + "?" + next.Encode()
}
