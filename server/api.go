package server

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
)

// APIConfig configures the query API handler.
type APIConfig struct {
	Engine *engine.Engine
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz.
	Token string
	// Keys, when set, replaces Token: the token is read from it on every
	// request, so that it can be rotated while serving.
	Keys    *Keys
	Logger  *slog.Logger
	Metrics *Metrics
	// Profiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/, behind the token like every other route.
	Profiling bool
	// AuditHead returns the event log's hash chain head: the last event's
	// seq and link. GET /v1/audit/head serves it, so that an operator can
	// keep it elsewhere and check it later with personad verify -head;
	// when nil, the route answers 404.
	AuditHead func(ctx context.Context) (seq int64, chain [32]byte, err error)
	// Health, when set, is what /healthz asks instead of Engine.Ping: nil
	// when a write can succeed now. /healthz gives it less than a second.
	// An error with a method HealthReason() (code, message string) names
	// the reason in the 503's error body; its full text goes to the log
	// only.
	Health func(ctx context.Context) error
	// StreamHeartbeat is how often an idle GET /v1/changes/stream sends a
	// comment; 0 means DefaultStreamHeartbeat.
	StreamHeartbeat time.Duration
	// Reconcile runs a reconciliation with Persona's REST API now, for
	// POST /v1/reconcile; when nil (no API key), the route answers 404
	// not_configured.
	Reconcile func(ctx context.Context, opts reconcile.Options) (reconcile.Report, error)
}

// Long-poll limits.
const (
	MaxWait           = 60 * time.Second
	DefaultChangesMax = 100
	MaxChanges        = 1000
)

type api struct {
	cfg APIConfig
	eng *engine.Engine
	hub *hub
}

// NewAPIHandler returns the query API: inquiries, their events and
// decisions, the change feed, /healthz, /metrics and its own OpenAPI
// document (/v1/openapi.json).
func NewAPIHandler(cfg APIConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	a := &api{cfg: cfg, eng: cfg.Engine, hub: newHub(cfg.Engine)}
	counted := newAPIRequests(cfg.Metrics)
	r := httprouter.New()
	r.RedirectFixedPath = false
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	// httprouter answers HEAD only where it is registered: every route
	// answers it as it answers GET (net/http sends no body for HEAD).
	get := func(route string, h httprouter.Handle) {
		h = counted.handle(route, h)
		r.GET(route, h)
		r.HEAD(route, h)
	}
	get("/v1/inquiries", a.auth(only(a.listInquiries, "status", "decision", "redacted", "reference_id", "account_id", "template_id", "limit", "cursor")))
	get("/v1/inquiries/:id", a.auth(only(a.getInquiry)))
	get("/v1/inquiries/:id/events", a.auth(only(a.getEvents)))
	get("/v1/inquiries/:id/decision", a.auth(only(a.waitDecision, "wait")))
	get("/v1/changes", a.auth(only(a.changes, "after", "limit", "wait")))
	get("/v1/changes/stream", a.auth(only(a.streamChanges, "after")))
	get("/v1/dead-letters", a.auth(only(a.listDeadLetters, "limit", "cursor", "include")))
	get("/v1/audit/head", a.auth(only(a.auditHead)))
	r.POST("/v1/reconcile", counted.handle("/v1/reconcile", a.auth(only(a.reconcileNow))))
	// Behind the token like every route but /healthz: one rule is simpler
	// to state and to check than a list of exceptions.
	get("/v1/openapi.json", a.auth(only(serveOpenAPI)))
	get("/healthz", a.healthz)
	get("/metrics", a.auth(func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		cfg.Metrics.Handler().ServeHTTP(w, r)
	}))
	if cfg.Profiling {
		get("/debug/pprof/*name", a.auth(profile))
	}
	r.NotFound = counted.handler(routeUnmatched, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such route")
	}))
	r.MethodNotAllowed = counted.handler(routeUnmatched, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// The router has set Allow to the methods the route takes.
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed: this route takes "+w.Header().Get("Allow"))
	}))
	r.PanicHandler = func(w http.ResponseWriter, _ *http.Request, v any) {
		cfg.Logger.Error("panic in API handler", "panic", v)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
	return noStore(routeEscaped(r))
}

// noStore marks every response of the query API Cache-Control: no-store
// (a handler may set another): they carry inquiries, users' ids and
// decisions, which no browser, proxy or CDN between the application and
// personad may keep, and an answer such as a decision is stale the
// moment it changes.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// routeEscaped routes on the path as sent, still escaped, so that an
// inquiry id holding a "/" (sent as %2F) is one path segment; handlers
// unescape the parameters they read (pathParam).
func routeEscaped(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if escaped := r.URL.EscapedPath(); escaped != r.URL.Path {
			u := *r.URL
			u.Path, u.RawPath = escaped, ""
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}

// pathParam returns a route parameter unescaped (see routeEscaped).
func pathParam(p httprouter.Params, name string) (string, error) {
	v, err := url.PathUnescape(p.ByName(name))
	if err != nil {
		return "", errors.New(name + " is not a valid escaped path segment")
	}
	return v, nil
}

// profile serves net/http/pprof's pages; Index serves the named
// profiles (heap, goroutine, ...) and the index itself.
func profile(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	switch p.ByName("name") {
	case "/cmdline":
		pprof.Cmdline(w, r)
	case "/profile":
		pprof.Profile(w, r)
	case "/symbol":
		pprof.Symbol(w, r)
	case "/trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

// only refuses, with a 400 naming it, a query parameter the route does
// not know: a typo such as ?staus=approved must never be read as "no
// filter" by a gate that lets users through.
func only(h httprouter.Handle, params ...string) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		for name := range r.URL.Query() {
			if !slices.Contains(params, name) {
				msg := "unknown query parameter " + strconv.Quote(name)
				if len(params) == 0 {
					msg += ": this route takes none"
				} else {
					msg += ": this route takes " + strings.Join(params, ", ")
				}
				badRequest(w, msg)
				return
			}
		}
		h(w, r, p)
	}
}

func (a *api) auth(h httprouter.Handle) httprouter.Handle {
	if a.token() == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="personad"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "a valid bearer token is required")
			return
		}
		h(w, r, p)
	}
}

// authorized reports whether r carries the API token of the moment (true
// when the API has none). A stream asks again as it goes, so that a
// token rotated away by a reload stops being served.
func (a *api) authorized(r *http.Request) bool {
	want := []byte(a.token())
	if len(want) == 0 {
		return true // an API without a token (Keys.Set never takes one away)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(token), want) == 1
}

// fail maps an engine error to a response; only unexpected errors are
// logged with detail.
func (a *api) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, engine.ErrInvalid):
		// A joined error reads one line per error; a message is one line.
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, strings.ReplaceAll(err.Error(), "\n", ": "))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "request cancelled")
	default:
		a.cfg.Logger.Error("query failed", "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

func badRequest(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, CodeInvalidRequest, msg)
}

func (a *api) getInquiry(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	id, err := pathParam(p, "id")
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	inq, err := a.eng.Inquiry(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, inq)
}

func (a *api) getEvents(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	id, err := pathParam(p, "id")
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	hist, err := a.eng.History(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": EventViews(hist)})
}

func (a *api) listInquiries(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	v := r.URL.Query()
	q := engine.Query{Status: engine.Status(v.Get("status")), Decision: engine.Status(v.Get("decision")), Cursor: v.Get("cursor")}
	if q.Status != "" && !q.Status.Known() {
		names := make([]string, len(engine.Statuses))
		for i, st := range engine.Statuses {
			names[i] = string(st)
		}
		badRequest(w, "status must be one of "+strings.Join(names, ", "))
		return
	}
	switch q.Decision {
	case "", engine.StatusApproved, engine.StatusDeclined, engine.StatusNeedsReview:
	default:
		badRequest(w, "decision must be one of approved, declined, needs_review")
		return
	}
	// Present but empty would select every user's inquiries: an
	// application that sent an unset user id would read another user's.
	for _, key := range []struct {
		name string
		to   *string
	}{{"reference_id", &q.ReferenceID}, {"account_id", &q.AccountID}, {"template_id", &q.TemplateID}} {
		if vs, ok := v[key.name]; ok {
			if len(vs) != 1 || vs[0] == "" {
				badRequest(w, key.name+" must be given once, and not empty")
				return
			}
			*key.to = vs[0]
		}
	}
	if q.Cursor != "" {
		if _, err := engine.DecodeCursor(q.Cursor); err != nil {
			badRequest(w, "cursor must be a next_cursor from an earlier page, unchanged")
			return
		}
	}
	if s := v.Get("redacted"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			badRequest(w, "redacted must be true or false")
			return
		}
		q.Redacted = &b
	}
	var err error
	if q.Limit, err = parseLimit(v.Get("limit"), engine.DefaultLimit, engine.MaxLimit); err != nil {
		badRequest(w, err.Error())
		return
	}
	page, next, err := a.eng.Inquiries(r.Context(), q)
	if err != nil {
		a.fail(w, err)
		return
	}
	if page == nil {
		page = []*engine.Inquiry{}
	}
	var cursor *string
	if next != "" {
		cursor = &next
	}
	writeJSON(w, http.StatusOK, map[string]any{"inquiries": page, "next_cursor": cursor})
}

// parseLimit reads a limit parameter: def when absent, else 1..max.
func parseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, errors.New("limit must be between 1 and " + strconv.Itoa(max))
	}
	return n, nil
}

// waitUsage is the 400 message of a wait parameter personad cannot read.
var waitUsage = "wait must be a duration such as 30s, or whole seconds such as 30, and not negative; a wait over " +
	strconv.Itoa(int(MaxWait/time.Second)) + "s is cut to " + strconv.Itoa(int(MaxWait/time.Second)) + "s"

// parseWait reads a wait parameter: a Go duration ("30s") or whole
// seconds ("30"), at most MaxWait. A value too large for a time.Duration
// is refused, not wrapped around.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, errors.New(waitUsage)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, errors.New(waitUsage)
	}
	return min(d, MaxWait), nil
}

// waitDecision answers with the projection as soon as it has a decision,
// or at the timeout with decision null. An inquiry personad has not heard
// of yet is waited for too; at the timeout it is a 404.
func (a *api) waitDecision(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	id, err := pathParam(p, "id")
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	next, done := a.hub.watchInquiry(id)
	defer done()
	var inq *engine.Inquiry
	a.poll(r.Context(), wait, next, func() bool {
		inq, err = a.eng.Inquiry(context.WithoutCancel(r.Context()), id)
		return (err != nil && !errors.Is(err, engine.ErrNotFound)) || (inq != nil && inq.Decision != "")
	})
	// Decided, timed out, or the server is shutting down: answer with what
	// there is (a client that went away just misses the answer).
	if err != nil {
		a.fail(w, err) // a 404 for an inquiry still unknown at the timeout
		return
	}
	writeJSON(w, http.StatusOK, inq)
}

// poll calls ready until it reports true or the wait ends, calling it
// again each time the channel next returns (taken before each call) is
// closed.
func (a *api) poll(ctx context.Context, wait time.Duration, next func() <-chan struct{}, ready func() bool) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		changed := next()
		if ready() {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			// Once more at the end: a commit the engine could not report
			// (its caller's deadline passed first, so the delivery was
			// answered 503) wakes no poll, but must not be answered stale.
			ready()
			return
		}
	}
}

// pollFeed reads the changes after the cursor, waiting for some when
// there are none. The store is read first, and then only once the head
// held in memory has moved past the cursor: a parked feed poll costs no
// query until there is something to return.
func (a *api) pollFeed(ctx context.Context, wait time.Duration, after int64, limit int) ([]engine.Change, error) {
	read := context.WithoutCancel(ctx) // answer with what there is, even at shutdown
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for first := true; ; first = false {
		head, moved := a.hub.feed()
		if first || head > after {
			page, err := a.eng.Changes(read, after, limit)
			if err != nil || len(page) > 0 {
				return page, err
			}
		}
		select {
		case <-moved:
		case <-ctx.Done():
			// Once more at the end, as poll does: a late commit moves no head.
			return a.eng.Changes(read, after, limit)
		}
	}
}

// changes serves the change feed. A consumer that stores "next" and asks
// again with after=next never misses or repeats a change.
func (a *api) changes(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	v := r.URL.Query()
	after := int64(0)
	limit, err := parseLimit(v.Get("limit"), DefaultChangesMax, MaxChanges)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if s := v.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			badRequest(w, "after must be a change seq (a whole number ≥ 0)")
			return
		}
	}
	wait, err := parseWait(v.Get("wait"))
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	if a.feedCursorAhead(w, r, after, "after") {
		return
	}
	page, err := a.pollFeed(r.Context(), wait, after, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	next := after
	if len(page) > 0 {
		next = page[len(page)-1].Seq
	} else {
		page = []engine.Change{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"changes": page, "next": next})
}

// auditHead answers {"seq": N, "chain": "<64 hex digits>"}: the head of
// the event log's hash chain, seq 0 and a zero link for an empty log.
func (a *api) auditHead(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if a.cfg.AuditHead == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "this server keeps no audit chain")
		return
	}
	seq, chain, err := a.cfg.AuditHead(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Seq   int64  `json:"seq"`
		Chain string `json:"chain"`
	}{seq, hex.EncodeToString(chain[:])})
}

// healthTimeout bounds /healthz: a load balancer or Persona-facing probe
// must learn of a stalled disk within a second, not when it times out.
const healthTimeout = 900 * time.Millisecond

func (a *api) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	check := a.cfg.Health
	if check == nil {
		check = a.eng.Ping
	}
	if err := check(ctx); err != nil {
		code, msg := CodeUnavailable, "database not writable"
		var reason interface{ HealthReason() (code, message string) }
		switch {
		case errors.As(err, &reason):
			code, msg = reason.HealthReason()
		case errors.Is(err, context.DeadlineExceeded):
			msg = "the database did not answer within " + healthTimeout.String()
		}
		a.cfg.Logger.Error("health check failed", "code", code, "err", err)
		writeError(w, http.StatusServiceUnavailable, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
