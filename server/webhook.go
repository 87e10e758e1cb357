package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/personad/personad/engine"
)

// WebhookPath is where Persona posts events.
const WebhookPath = "/webhooks/persona"

// WebhookConfig configures the webhook handler.
type WebhookConfig struct {
	Engine  *engine.Engine
	Secrets [][]byte // at least one; several during a rotation
	// Keys, when set, replaces Secrets: the secrets are read from it on
	// every request, so that they can be rotated while serving.
	Keys *Keys
	// Tolerance is the accepted age of a signature, both ways (default 5m).
	Tolerance time.Duration
	// MaxBody is the largest body accepted, in bytes (default 1 MiB).
	MaxBody int64
	// AllowIPs, when set, refuses requests from any other address.
	AllowIPs []netip.Prefix
	// TrustedProxies are peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// IngestTimeout bounds how long a delivery may wait for the store
	// (default 4s, inside Persona's 5 s).
	IngestTimeout time.Duration
	Logger        *slog.Logger
	Metrics       *Metrics
	Now           func() time.Time // default time.Now

	// BodyReads bounds how many bodies of more than SmallBody bytes (or
	// of no declared length) are read at once before their signature can
	// be checked (default 16), and SmallBodyReads those of at most
	// SmallBody bytes (default 256): memory held by unauthenticated
	// uploads stays within BodyReads×MaxBody + SmallBodyReads×SmallBody.
	// Persona's bodies are a few KB, so a flood of large stalled uploads
	// never takes the slots real deliveries read from.
	BodyReads      int
	SmallBodyReads int
	// SlotWait is how long a request may wait for a free read slot
	// before it is answered 503 with Retry-After (default 1s).
	SlotWait time.Duration
	// BodyTimeout bounds reading one body once it holds a slot (default
	// 10s), so that a stalled upload gives its slot back.
	BodyTimeout time.Duration
}

// SmallBody is the size up to which a declared body is read from the
// small-body slots (WebhookConfig.SmallBodyReads).
const SmallBody = 64 << 10

// ErrNoSecret is returned when a webhook handler is configured without a
// secret: personad fails closed rather than accept unsigned requests.
var ErrNoSecret = errors.New("no webhook secret configured")

type webhookHandler struct {
	cfg      WebhookConfig
	verifier Verifier
	// Read slots for bodies not yet authenticated: a buffered channel
	// holds one token per body being read.
	largeReads, smallReads chan struct{}
}

// NewWebhookHandler returns the handler for POST /webhooks/persona, to be
// mounted wherever the application likes. It answers 200 only once the
// event is durable. Errors: ErrNoSecret.
func NewWebhookHandler(cfg WebhookConfig) (http.Handler, error) {
	if cfg.Keys != nil {
		cfg.Secrets = cfg.Keys.Secrets()
	}
	if len(cfg.Secrets) == 0 {
		return nil, ErrNoSecret
	}
	for _, s := range cfg.Secrets {
		if len(s) == 0 {
			return nil, ErrNoSecret
		}
	}
	if cfg.Engine == nil {
		return nil, errors.New("server: webhook handler needs an engine")
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.IngestTimeout <= 0 {
		cfg.IngestTimeout = 4 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyReads <= 0 {
		cfg.BodyReads = 16
	}
	if cfg.SmallBodyReads <= 0 {
		cfg.SmallBodyReads = 256
	}
	if cfg.SlotWait <= 0 {
		cfg.SlotWait = time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 10 * time.Second
	}
	return &webhookHandler{cfg: cfg, verifier: Verifier{Secrets: cfg.Secrets, Tolerance: cfg.Tolerance},
		largeReads: make(chan struct{}, cfg.BodyReads), smallReads: make(chan struct{}, cfg.SmallBodyReads)}, nil
}

// webhookResponse is the body of a 200.
type webhookResponse struct {
	EventID   *string        `json:"event_id"` // null for a dead letter
	Outcome   engine.Outcome `json:"outcome"`
	Duplicate bool           `json:"duplicate"`
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	// The request's attributes are formatted only for a line written: a
	// Logger.With per request costs every delivery, logged or not.
	// Persona's retry headers are among them once the body was ingested.
	withAttempts := false
	logAt := func(level slog.Level, msg string, args ...any) {
		if !h.cfg.Logger.Enabled(r.Context(), level) {
			return
		}
		attrs := []any{"remote", r.RemoteAddr}
		if withAttempts {
			attrs = append(attrs, attemptAttrs(r.Header)...)
		}
		h.cfg.Logger.Log(r.Context(), level, msg, append(attrs, args...)...)
	}
	fail := func(status int, code, msg string) {
		h.cfg.Metrics.delivery(status, "")
		logAt(slog.LevelWarn, "webhook refused", "status", status, "code", code, "reason", msg)
		writeError(w, status, code, msg)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use POST")
		return
	}
	if len(h.cfg.AllowIPs) > 0 {
		ip, ok := clientIP(r, h.cfg.TrustedProxies)
		if !ok || !contains(h.cfg.AllowIPs, ip) {
			fail(http.StatusForbidden, CodeForbidden, "address not allowed")
			return
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type must be application/json")
		return
	}
	if r.ContentLength > h.cfg.MaxBody {
		fail(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "body larger than "+strconv.FormatInt(h.cfg.MaxBody, 10)+" bytes")
		return
	}
	// Everything that can be checked without the body is, before it is
	// read: a request refused here gets no 100 Continue and costs no
	// body buffer.
	verifier := h.currentVerifier()
	sets, err := verifier.Fresh(r.Header.Get(SignatureHeader), now)
	if err != nil {
		h.refuseSignature(err, fail)
		return
	}
	slots := h.largeReads
	if r.ContentLength >= 0 && r.ContentLength <= SmallBody {
		slots = h.smallReads
	}
	if !h.acquire(r.Context(), slots) {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, CodeUnavailable, "too many bodies being received; retry later")
		return
	}
	body, err := h.readBody(w, r)
	<-slots
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			fail(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "body larger than "+strconv.FormatInt(h.cfg.MaxBody, 10)+" bytes")
		case errors.Is(err, os.ErrDeadlineExceeded):
			fail(http.StatusRequestTimeout, CodeInvalidRequest, "the body did not arrive within "+h.cfg.BodyTimeout.String())
		default:
			fail(http.StatusBadRequest, CodeInvalidRequest, "could not read the body")
		}
		return
	}
	if err := verifier.VerifyFresh(sets, body); err != nil {
		h.refuseSignature(err, fail)
		return
	}

	attempts, _ := strconv.Atoi(r.Header.Get("Persona-Webhook-Attempts-Made"))
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.IngestTimeout)
	defer cancel()
	res, err := h.cfg.Engine.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: now, AttemptsMade: max(attempts, 0)})
	h.cfg.Metrics.ingestSeconds.Observe(time.Since(now).Seconds())
	withAttempts = true
	switch {
	case errors.Is(err, engine.ErrMalformed):
		// Authentic but unreadable: kept as a dead letter, once per body,
		// and acknowledged, since Persona retries anything but a 2xx for
		// days. A human reads it from the warning and the metric.
		h.cfg.Metrics.delivery(http.StatusOK, string(engine.OutcomeDeadLetter))
		h.cfg.Metrics.deadLetters.Inc()
		h.cfg.Metrics.ingested(res)
		logAt(slog.LevelWarn, "authentic body kept as a dead letter", "reason", err.Error(), "duplicate", res.Duplicate)
		writeJSON(w, http.StatusOK, webhookResponse{Outcome: engine.OutcomeDeadLetter, Duplicate: res.Duplicate})
	case err != nil:
		h.cfg.Metrics.delivery(http.StatusServiceUnavailable, "")
		logAt(slog.LevelError, "webhook not stored; Persona will retry", "status", http.StatusServiceUnavailable, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the event could not be stored; retry later")
	case res.Conflict:
		// The same event id with another body: the first stands, this one
		// is kept beside it, and Persona gets the duplicate's 200.
		h.cfg.Metrics.delivery(http.StatusOK, string(res.Outcome))
		h.cfg.Metrics.conflicting.Inc()
		h.cfg.Metrics.ingested(res)
		sum := sha256.Sum256(body)
		logAt(slog.LevelWarn, "event redelivered with another body; the stored body stands, this one is kept as a conflict",
			"event_id", res.EventID, "inquiry_id", res.InquiryID, "sha256", hex.EncodeToString(sum[:]),
			"repeated", res.ConflictRepeated)
		writeJSON(w, http.StatusOK, webhookResponse{EventID: &res.EventID, Outcome: res.Outcome, Duplicate: true})
	default:
		h.cfg.Metrics.delivery(http.StatusOK, string(res.Outcome))
		h.cfg.Metrics.ingested(res)
		// Debug, not info: a line per delivery costs the HTTP path about
		// 12 µs of CPU, and the metrics count every delivery already.
		logAt(slog.LevelDebug, "webhook stored", "event_id", res.EventID, "event", res.Name, "inquiry_id", res.InquiryID,
			"outcome", res.Outcome, "duplicate", res.Duplicate, "from", res.Before, "to", res.After)
		writeJSON(w, http.StatusOK, webhookResponse{EventID: &res.EventID, Outcome: res.Outcome, Duplicate: res.Duplicate})
	}
}

// refuseSignature answers 401 for a request whose signature fails, and
// counts why.
func (h *webhookHandler) refuseSignature(err error, fail func(int, string, string)) {
	reason := ReasonMismatch
	if se, ok := IsSignatureError(err); ok {
		reason = se.Reason
	}
	h.cfg.Metrics.signatureFail.WithLabelValues(reason).Inc()
	fail(http.StatusUnauthorized, CodeUnauthorized, err.Error())
}

// acquire takes a read slot, waiting at most SlotWait; it reports false
// when none came free (or the client went away).
func (h *webhookHandler) acquire(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.cfg.SlotWait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// readBody reads the whole body, at most MaxBody bytes, within
// BodyTimeout: a slowloris upload gives its read slot back when the
// deadline passes. A declared length (already checked against MaxBody)
// is read into a buffer of exactly that size.
func (h *webhookHandler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter has a connection to set a deadline on
	// (a test recorder); such a one has no slow client either.
	if rc.SetReadDeadline(time.Now().Add(h.cfg.BodyTimeout)) == nil {
		// The next request on the connection gets the server's own
		// deadlines; nothing is read after the body in this one.
		defer rc.SetReadDeadline(time.Time{})
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.MaxBody)
	if r.ContentLength < 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
