// Package persona is a small client for the parts of Persona's REST API that
// personad reads to repair what webhooks missed: the Events API and the
// inquiries endpoints. It pins the API version, sends kebab-case keys, limits
// its own request rate, obeys Persona's rate-limit headers, retries transient
// failures, and never lets the API key reach an error or a log line.
package persona

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults and the pinned protocol values.
const (
	// DefaultBaseURL is Persona's production API host.
	DefaultBaseURL = "https://api.withpersona.com"
	// APIVersion is the Persona-Version every request pins, so a change of
	// the account's default version cannot change the shapes personad reads.
	APIVersion = "2025-12-08"
	// DefaultRatePerMinute is Persona's default limit per environment.
	DefaultRatePerMinute = 300
	// DefaultTimeout bounds one HTTP attempt (not the whole call with retries).
	DefaultTimeout = 30 * time.Second
	// DefaultMaxRetries is how often a 5xx or network failure is retried.
	DefaultMaxRetries = 4
	// DefaultMaxRateLimitRetries is how often a 429 is waited out and retried.
	DefaultMaxRateLimitRetries = 10
	// PageSize is the page size of every list call: Persona's maximum.
	PageSize = 100

	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
	// maxServerWait caps a wait Persona asks for (Retry-After, RateLimit-Reset)
	// so a bogus header cannot park the client for hours.
	maxServerWait = 5 * time.Minute
	// maxBody bounds a response body read into memory: 100 events with their
	// full inquiry payloads fit with a wide margin.
	maxBody = 32 << 20
)

// Config configures a Client. Only APIKey is required.
type Config struct {
	// BaseURL is the API origin, without /api/v1; DefaultBaseURL when empty.
	BaseURL string
	// APIKey is sent only as "Authorization: Bearer"; see LoadAPIKey.
	APIKey string
	// RatePerMinute is the client-side request limit: DefaultRatePerMinute
	// when 0, no client-side limit when negative (Persona's 429s and
	// RateLimit headers are still obeyed).
	RatePerMinute float64
	// Timeout bounds one HTTP attempt; DefaultTimeout when 0.
	Timeout time.Duration
	// MaxRetries is how often 5xx and network failures are retried:
	// DefaultMaxRetries when 0, none when negative.
	MaxRetries int
	// MaxRateLimitRetries is how often a 429 is retried after its wait:
	// DefaultMaxRateLimitRetries when 0, none when negative.
	MaxRateLimitRetries int
	// Logger receives one WARN line per failed attempt; discarded when nil.
	Logger *slog.Logger
	// HTTPClient does the requests; a fresh http.Client when nil. Its own
	// Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Sleep waits d or until ctx ends; tests replace it to record waits
	// instead of sleeping. A real timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now reads the clock for rate limiting and HTTP-date Retry-After;
	// time.Now when nil.
	Now func() time.Time
}

// Client calls Persona's REST API. It is safe for concurrent use; the rate
// limit and any server-requested pause are shared by all calls.
type Client struct {
	base       *url.URL
	key        string
	timeout    time.Duration
	maxRetries int
	max429     int
	log        *slog.Logger
	hc         *http.Client
	sleep      func(context.Context, time.Duration) error
	now        func() time.Time
	limiter    *rate.Limiter

	mu        sync.Mutex
	notBefore time.Time // no request starts before this (429 or nearly exhausted budget)
}

// ErrNoAPIKey is returned by New without an API key: the client fails closed
// rather than sending unauthenticated requests.
var ErrNoAPIKey = errors.New("persona: no API key configured")

// New returns a Client for cfg. It returns ErrNoAPIKey without a key and an
// error for a base URL that is not an absolute http(s) URL.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, ErrNoAPIKey
	}
	if err := checkKey(cfg.APIKey); err != nil {
		return nil, err
	}
	raw := cfg.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("persona: base URL %q is not an absolute http(s) URL", raw)
	}
	if base.User != nil {
		return nil, errors.New("persona: base URL must not carry credentials; the API key comes from PERSONA_API_KEY or a key file")
	}
	c := &Client{
		base:       base,
		key:        cfg.APIKey,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		max429:     cfg.MaxRateLimitRetries,
		log:        cfg.Logger,
		hc:         cfg.HTTPClient,
		sleep:      cfg.Sleep,
		now:        cfg.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	switch {
	case c.max429 == 0:
		c.max429 = DefaultMaxRateLimitRetries
	case c.max429 < 0:
		c.max429 = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.now == nil {
		c.now = time.Now
	}
	perMinute := cfg.RatePerMinute
	if perMinute == 0 {
		perMinute = DefaultRatePerMinute
	}
	if perMinute > 0 {
		// Burst 1: requests are spaced evenly, so no 60-second window ever
		// holds more than the limit (a burst would overshoot Persona's
		// per-minute budget right at start).
		c.limiter = rate.NewLimiter(rate.Limit(perMinute/60), 1)
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNotFound matches (with errors.Is) an *Error for a 404 response.
var ErrNotFound = errors.New("persona: not found")

// ErrUnauthorized matches (with errors.Is) an *Error for a 401 or 403
// response: the API key is wrong, revoked or lacks a permission, so every
// other request would fail alike.
var ErrUnauthorized = errors.New("persona: API key refused")

// Error is a non-2xx answer from Persona, after any retries.
type Error struct {
	// Method and Path name the request (the path without its query).
	Method, Path string
	// StatusCode is the HTTP status of the last attempt.
	StatusCode int
	// Title and Detail are the first entry of Persona's "errors" array, when
	// the body had one.
	Title, Detail string
	// RequestID is Persona's Request-Id header, the handle for its support.
	RequestID string
}

// Error reads like "persona: GET /api/v1/inquiries/inq_1: 404 Not Found: Record not found (request req_1)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "persona: %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Title != "" {
		b.WriteString(": " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNotFound) true for a 404, and
// errors.Is(err, ErrUnauthorized) for a 401 or 403.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// get performs GET base+path?query with retries and rate limiting, and
// returns the body of the 2xx answer. Errors: *Error for a non-2xx answer,
// a wrapped network or timeout error, or ctx's error.
func (c *Client) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	retries, limited := 0, 0
	for attempt := 1; ; attempt++ {
		if err := c.waitTurn(ctx); err != nil {
			return nil, err
		}
		body, resp, err := c.do(ctx, u.String())
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			err = c.scrub(err)
			if retries >= c.maxRetries {
				c.log.Warn("persona request failed", "method", "GET", "path", path, "attempt", attempt, "error", err.Error(), "retry", false)
				return nil, fmt.Errorf("persona: GET %s: %w", path, err)
			}
			wait := backoff(retries)
			retries++
			c.log.Warn("persona request failed", "method", "GET", "path", path, "attempt", attempt, "error", err.Error(), "retry_in", wait.String())
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		c.observeBudget(resp.Header)
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return body, nil
		}
		apiErr := c.apiError(path, resp, body)
		var wait time.Duration
		retry := false
		switch {
		case resp.StatusCode == http.StatusTooManyRequests && limited < c.max429:
			limited++
			wait = c.serverWait(resp.Header)
			if wait <= 0 {
				wait = backoff(limited - 1)
			}
			c.pauseUntil(c.now().Add(wait))
			wait = 0 // waitTurn sleeps until the shared pause ends
			retry = true
		case resp.StatusCode >= 500 && retries < c.maxRetries:
			wait = backoff(retries)
			retries++
			retry = true
		}
		c.log.Warn("persona request failed", "method", "GET", "path", path, "attempt", attempt,
			"status", resp.StatusCode, "request_id", apiErr.RequestID, "title", apiErr.Title, "retry", retry)
		if !retry {
			return nil, apiErr
		}
		if wait > 0 {
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
}

// do runs one attempt under the per-attempt timeout and reads the body.
func (c *Client) do(ctx context.Context, u string) ([]byte, *http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Persona-Version", APIVersion)
	req.Header.Set("Key-Inflection", "kebab")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	if len(body) > maxBody {
		return nil, nil, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	return body, resp, nil
}

// scrub removes the API key from an error's text in case a transport or
// proxy echoed a header back; the returned error keeps only the text.
func (c *Client) scrub(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, c.key) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(msg, c.key, "[redacted]"), cause: errors.Unwrap(err)}
}

type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.cause }

// backoff is the wait before retry n (0-based): 0.5s, 1s, 2s, ... capped at 30s.
func backoff(n int) time.Duration {
	d := time.Duration(float64(backoffBase) * math.Pow(2, float64(n)))
	if d > backoffMax || d <= 0 {
		return backoffMax
	}
	return d
}

// waitTurn blocks until any server-requested pause has passed and the
// client-side limiter grants a request.
func (c *Client) waitTurn(ctx context.Context) error {
	for {
		c.mu.Lock()
		d := c.notBefore.Sub(c.now())
		c.mu.Unlock()
		if d <= 0 {
			break
		}
		if err := c.sleep(ctx, d); err != nil {
			return err
		}
	}
	if c.limiter == nil {
		return ctx.Err()
	}
	now := c.now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("persona: rate limiter cannot grant a request")
	}
	if d := r.DelayFrom(now); d > 0 {
		if err := c.sleep(ctx, d); err != nil {
			r.CancelAt(c.now())
			return err
		}
	}
	return nil
}

// pauseUntil holds every request until t (extending, never shortening, a pause).
func (c *Client) pauseUntil(t time.Time) {
	c.mu.Lock()
	if t.After(c.notBefore) {
		c.notBefore = t
	}
	c.mu.Unlock()
}

// serverWait is how long a 429 asks to wait: Retry-After (seconds or an
// HTTP date), else RateLimit-Reset; 0 when neither is usable.
func (c *Client) serverWait(h http.Header) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			return clampWait(time.Duration(s * float64(time.Second)))
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(c.now()))
		}
	}
	return c.resetIn(h)
}

// resetIn reads RateLimit-Reset. The header is specified as seconds until the
// window resets; a value that looks like a Unix time (past 2001) is read as
// one, since some servers send that instead.
func (c *Client) resetIn(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("RateLimit-Reset"))
	if v == "" {
		return 0
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || s < 0 {
		return 0
	}
	if s > 1e9 {
		return clampWait(time.Unix(int64(s), 0).Sub(c.now()))
	}
	return clampWait(time.Duration(s * float64(time.Second)))
}

func clampWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > maxServerWait {
		return maxServerWait
	}
	return d
}

// observeBudget slows the client down as Persona's remaining budget for the
// window nears zero: with the last tenth (or last 10 requests when the limit
// is unknown) left, the remaining requests are spread evenly over the time to
// reset; at 0 no request starts before the reset.
func (c *Client) observeBudget(h http.Header) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("RateLimit-Remaining")))
	if err != nil || rem < 0 {
		return
	}
	threshold := 10
	if limit, err := strconv.Atoi(strings.TrimSpace(h.Get("RateLimit-Limit"))); err == nil && limit > 0 {
		threshold = max(1, limit/10)
	}
	if rem > threshold {
		return
	}
	reset := c.resetIn(h)
	if reset <= 0 {
		return
	}
	c.pauseUntil(c.now().Add(reset / time.Duration(rem+1)))
}
