package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
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
}

// ErrNoSecret is returned when a webhook handler is configured without a
// secret: personad fails closed rather than accept unsigned requests.
var ErrNoSecret = errors.New("no webhook secret configured")

type webhookHandler struct {
	cfg      WebhookConfig
	verifier Verifier
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
	return &webhookHandler{cfg: cfg, verifier: Verifier{Secrets: cfg.Secrets, Tolerance: cfg.Tolerance}}, nil
}

// webhookResponse is the body of a 200.
type webhookResponse struct {
	EventID   *string        `json:"event_id"` // null for a dead letter
	Outcome   engine.Outcome `json:"outcome"`
	Duplicate bool           `json:"duplicate"`
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	log := h.cfg.Logger.With("remote", r.RemoteAddr)
	fail := func(status int, code, msg string) {
		h.cfg.Metrics.delivery(status, "")
		log.Warn("webhook refused", "status", status, "code", code, "reason", msg)
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			fail(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "body larger than "+strconv.FormatInt(h.cfg.MaxBody, 10)+" bytes")
			return
		}
		fail(http.StatusBadRequest, CodeInvalidRequest, "could not read the body")
		return
	}
	if err := h.verify(r.Header.Get(SignatureHeader), body, now); err != nil {
		reason := ReasonMismatch
		if se, ok := IsSignatureError(err); ok {
			reason = se.Reason
		}
		h.cfg.Metrics.signatureFail.WithLabelValues(reason).Inc()
		fail(http.StatusUnauthorized, CodeUnauthorized, err.Error())
		return
	}

	attempts, _ := strconv.Atoi(r.Header.Get("Persona-Webhook-Attempts-Made"))
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.IngestTimeout)
	defer cancel()
	res, err := h.cfg.Engine.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: now, AttemptsMade: max(attempts, 0)})
	h.cfg.Metrics.ingestSeconds.Observe(time.Since(now).Seconds())
	log = log.With(attemptAttrs(r.Header)...)
	switch {
	case errors.Is(err, engine.ErrMalformed):
		// Authentic but unreadable: kept as a dead letter, once per body,
		// and acknowledged, since Persona retries anything but a 2xx for
		// days. A human reads it from the warning and the metric.
		h.cfg.Metrics.delivery(http.StatusOK, string(engine.OutcomeDeadLetter))
		h.cfg.Metrics.deadLetters.Inc()
		h.cfg.Metrics.ingested(res)
		log.Warn("authentic body kept as a dead letter", "reason", err.Error(), "duplicate", res.Duplicate)
		writeJSON(w, http.StatusOK, webhookResponse{Outcome: engine.OutcomeDeadLetter, Duplicate: res.Duplicate})
	case err != nil:
		h.cfg.Metrics.delivery(http.StatusServiceUnavailable, "")
		log.Error("webhook not stored; Persona will retry", "status", http.StatusServiceUnavailable, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the event could not be stored; retry later")
	default:
		h.cfg.Metrics.delivery(http.StatusOK, string(res.Outcome))
		h.cfg.Metrics.ingested(res)
		log.Info("webhook stored", "event_id", res.EventID, "event", res.Name, "inquiry_id", res.InquiryID,
			"outcome", res.Outcome, "duplicate", res.Duplicate, "from", res.Before, "to", res.After)
		writeJSON(w, http.StatusOK, webhookResponse{EventID: &res.EventID, Outcome: res.Outcome, Duplicate: res.Duplicate})
	}
}
