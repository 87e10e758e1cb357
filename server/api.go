package server

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/personad/personad/engine"
)

// APIConfig configures the query API handler.
type APIConfig struct {
	Engine *engine.Engine
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz.
	Token   string
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
}

// NewAPIHandler returns the query API: inquiries, their events and
// decisions, the change feed, /healthz and /metrics.
func NewAPIHandler(cfg APIConfig) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	a := &api{cfg: cfg, eng: cfg.Engine}
	r := httprouter.New()
	r.RedirectFixedPath = false
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.GET("/v1/inquiries", a.auth(only(a.listInquiries, "status", "decision", "redacted", "limit", "cursor")))
	r.GET("/v1/inquiries/:id", a.auth(only(a.getInquiry)))
	r.GET("/v1/inquiries/:id/events", a.auth(only(a.getEvents)))
	r.GET("/v1/inquiries/:id/decision", a.auth(only(a.waitDecision, "wait")))
	r.GET("/v1/changes", a.auth(only(a.changes, "after", "limit", "wait")))
	r.GET("/v1/audit/head", a.auth(only(a.auditHead)))
	r.GET("/healthz", a.healthz)
	r.GET("/metrics", a.auth(func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		cfg.Metrics.Handler().ServeHTTP(w, r)
	}))
	if cfg.Profiling {
		r.GET("/debug/pprof/*name", a.auth(profile))
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such route")
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method not allowed")
	})
	r.PanicHandler = func(w http.ResponseWriter, _ *http.Request, v any) {
		cfg.Logger.Error("panic in API handler", "panic", v)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
	return r
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
	if a.cfg.Token == "" {
		return h
	}
	want := []byte(a.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		// The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(token), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="personad"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "a valid bearer token is required")
			return
		}
		h(w, r, p)
	}
}

// fail maps an engine error to a response; only unexpected errors are
// logged with detail.
func (a *api) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
	case errors.Is(err, engine.ErrInvalid):
		writeError(w, http.StatusBadRequest, CodeInvalidRequest, err.Error())
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
	inq, err := a.eng.Inquiry(r.Context(), p.ByName("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, inq)
}

func (a *api) getEvents(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	hist, err := a.eng.History(r.Context(), p.ByName("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": EventViews(hist)})
}

func (a *api) listInquiries(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	v := r.URL.Query()
	q := engine.Query{Status: engine.Status(v.Get("status")), Decision: engine.Status(v.Get("decision")), Cursor: v.Get("cursor")}
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

// parseWait reads a wait parameter: a Go duration ("30s") or whole
// seconds ("30"), at most MaxWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, errors.New("wait must be a duration such as 30s")
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 {
		return 0, errors.New("wait must not be negative")
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
	var inq *engine.Inquiry
	a.poll(r.Context(), wait, func() bool {
		inq, err = a.eng.Inquiry(context.WithoutCancel(r.Context()), p.ByName("id"))
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
// again after each committed change.
func (a *api) poll(ctx context.Context, wait time.Duration, ready func() bool) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		changed := a.eng.Changed()
		if ready() {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
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
	if after > 0 {
		// A cursor beyond the feed's head (one kept by a consumer while
		// the database was restored from an older backup) would wait
		// for ever, or read changes it never saw as already seen.
		at, err := a.eng.Changes(context.WithoutCancel(r.Context()), after-1, 1)
		if err != nil {
			a.fail(w, err)
			return
		}
		if len(at) == 0 || at[0].Seq != after {
			writeError(w, http.StatusConflict, CodeCursorAhead,
				"after="+strconv.FormatInt(after, 10)+" is beyond the change feed's head: the database is older than the cursor (restored from a backup?); start again from after=0")
			return
		}
	}
	var page []engine.Change
	a.poll(r.Context(), wait, func() bool {
		page, err = a.eng.Changes(context.WithoutCancel(r.Context()), after, limit)
		return err != nil || len(page) > 0
	})
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
