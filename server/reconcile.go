package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
)

// Limits of POST /v1/reconcile.
const (
	maxReconcileBody = 64 << 10
	// MaxReconcileInquiries bounds the inquiry ids one request names.
	MaxReconcileInquiries = 1000
	// reconcileDeadline bounds how long a request may hold the connection
	// while its run works; the run itself ends when the client goes.
	reconcileDeadline = time.Hour
)

// CodeNotConfigured: the route's feature is off in this daemon.
const CodeNotConfigured = "not_configured"

// CodeReconcileFailed: a reconciliation run ended with an error.
const CodeReconcileFailed = "reconcile_failed"

// reconcileNow runs a reconciliation now and answers its report. The body
// is optional: {"inquiry_ids": [...], "only_named": bool}.
func (a *api) reconcileNow(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if a.cfg.Reconcile == nil {
		writeError(w, http.StatusNotFound, CodeNotConfigured,
			"reconciliation is not configured: start personad serve with a Persona API key (PERSONA_API_KEY or -persona-api-key-file)")
		return
	}
	opts, msg := readReconcileOptions(r)
	if msg != "" {
		badRequest(w, msg)
		return
	}
	// A run reads Persona at its rate limit: give it longer than the
	// server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(reconcileDeadline))
	rep, err := a.cfg.Reconcile(r.Context(), opts)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, reconcileReportView(rep))
	case errors.Is(err, reconcile.ErrBusy):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "another reconciliation run is in progress")
	case r.Context().Err() != nil:
		a.fail(w, r.Context().Err())
	default:
		a.cfg.Logger.Error("reconcile run requested over the API failed", "err", err)
		writeError(w, http.StatusBadGateway, CodeReconcileFailed, err.Error())
	}
}

// readReconcileOptions reads the optional JSON body of POST /v1/reconcile;
// msg says what is wrong with it.
func readReconcileOptions(r *http.Request) (opts reconcile.Options, msg string) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxReconcileBody))
	if err != nil {
		return opts, "the body is larger than " + strconv.Itoa(maxReconcileBody>>10) + " KiB or could not be read"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return opts, ""
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&opts); err != nil {
		return opts, "the body is not a reconcile request {\"inquiry_ids\": [...], \"only_named\": bool}: " + err.Error()
	}
	if dec.More() {
		return opts, "the body holds more than one JSON value"
	}
	if len(opts.Inquiries) > MaxReconcileInquiries {
		return opts, "at most " + strconv.Itoa(MaxReconcileInquiries) + " inquiry_ids per request"
	}
	for _, id := range opts.Inquiries {
		if id == "" || len(id) > 256 {
			return opts, "an inquiry id is empty or longer than 256 bytes"
		}
	}
	if opts.OnlyNamed && len(opts.Inquiries) == 0 {
		return opts, "only_named needs inquiry_ids"
	}
	return opts, ""
}

// reconcileReport is the JSON of a run's report: reconcile.Report with
// the API's times (engine.FormatTime).
type reconcileReport struct {
	StartedAt    string                     `json:"started_at"`
	FinishedAt   string                     `json:"finished_at"`
	Checked      int                        `json:"inquiries_checked"`
	Recovered    int                        `json:"events_recovered"`
	Events       []reconcile.RecoveredEvent `json:"recovered"`
	Drifts       []driftView                `json:"drifts"`
	BeyondRepair []string                   `json:"beyond_repair"`
	Errors       []reconcile.Failure        `json:"errors"`
}

type driftView struct {
	InquiryID     string `json:"inquiry_id"`
	Status        string `json:"status"`
	PersonaStatus string `json:"persona_status"`
	CheckedAt     string `json:"checked_at"`
}

func reconcileReportView(rep reconcile.Report) reconcileReport {
	v := reconcileReport{
		StartedAt: engine.FormatTime(rep.StartedAt), FinishedAt: engine.FormatTime(rep.FinishedAt),
		Checked: rep.Checked, Recovered: rep.Recovered,
		Events: nonNil(rep.RecoveredEvents), Drifts: []driftView{}, BeyondRepair: nonNil(rep.BeyondRepair), Errors: nonNil(rep.Errors),
	}
	for _, d := range rep.Drifts {
		v.Drifts = append(v.Drifts, driftView{d.InquiryID, string(d.Status), string(d.PersonaStatus), engine.FormatTime(d.CheckedAt)})
	}
	return v
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
