package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/server"
)

// defaultReconcileEvery is serve's -reconcile-every once a Persona API key
// is configured.
const defaultReconcileEvery = 15 * time.Minute

// firstReconcileAfter bounds the wait for a serve's first run, so that a
// restart after an outage repairs soon, but not in the rush of start-up.
const firstReconcileAfter = time.Minute

// startReconciler builds the reconciler of a serve with a Persona API key,
// with its metrics; it returns nil without a key.
func (s *Serve) startReconciler(eng *engine.Engine, metrics *server.Metrics) (*reconcile.Reconciler, error) {
	if s.persona.key == "" {
		return nil, nil
	}
	client, err := s.persona.client(s.logger)
	if err != nil {
		return nil, err
	}
	return reconcile.New(reconcile.Config{Engine: eng, API: client, Logger: s.logger,
		Stale: s.ReconcileStale, MaxAge: s.ReconcileMaxAge, Observer: newReconcileMetrics(metrics)})
}

// reconcileLoop runs a reconciliation after first, then every every, until
// ctx ends.
func reconcileLoop(ctx context.Context, rec *reconcile.Reconciler, first, every time.Duration) {
	wait := time.NewTimer(first)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		rec.Run(ctx, reconcile.Options{}) // logs its report and errors itself
		wait.Reset(every)
	}
}

// reconcileMetrics counts what reconciliation runs do.
type reconcileMetrics struct {
	m           *server.Metrics
	runs        prometheus.Counter
	recovered   prometheus.Counter
	errors      prometheus.Counter
	lastSuccess prometheus.Gauge
}

func newReconcileMetrics(m *server.Metrics) *reconcileMetrics {
	r := &reconcileMetrics{
		m: m,
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "personad_reconcile_runs_total",
			Help: "Reconciliation runs with Persona's REST API, finished or failed.",
		}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "personad_reconcile_recovered_events_total",
			Help: "Events reconciliation ingested from Persona's Events API: each one a webhook personad never received. Non-zero means webhooks are being lost.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "personad_reconcile_errors_total",
			Help: "Errors of reconciliation runs: an inquiry that could not be checked, or a run that could not start or was refused by Persona.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "personad_reconcile_last_success_timestamp_seconds",
			Help: "Unix time a reconciliation run last finished without an error; 0 until one has.",
		}),
	}
	m.Registry.MustRegister(r.runs, r.recovered, r.errors, r.lastSuccess)
	return r
}

func (r *reconcileMetrics) Recovered(res engine.Result) {
	r.recovered.Inc()
	r.m.Ingested(res)
}

func (r *reconcileMetrics) Drifted(engine.Drift) { r.m.Anomaly(engine.AnomalyStatusDrift) }

func (r *reconcileMetrics) Failed() { r.errors.Inc() }

func (r *reconcileMetrics) RunDone(rep reconcile.Report, ok bool) {
	r.runs.Inc()
	if ok {
		r.lastSuccess.Set(float64(rep.FinishedAt.UnixMilli()) / 1000)
	}
}

// parseReconcile reads -reconcile-every ("" until given: on, every
// defaultReconcileEvery, once there is a Persona API key) and checks the
// other reconcile flags.
func (s *Serve) parseReconcile(every string) error {
	switch {
	case every == "" && s.persona.key != "":
		s.ReconcileEvery = defaultReconcileEvery
	case every != "":
		d, err := time.ParseDuration(every)
		if err != nil || d < 0 {
			return withHint(fmt.Errorf("-reconcile-every %q is not a duration of 0 or more", every), "-reconcile-every 15m (0: only when asked)")
		}
		if d > 0 && s.persona.key == "" {
			return withHint(errors.New("-reconcile-every without a Persona API key: reconciliation reads Persona's REST API"),
				"export "+envPersonaKey+"=persona_production_... or pass -persona-api-key-file FILE")
		}
		if d > 0 && d < time.Minute {
			return withHint(fmt.Errorf("-reconcile-every %v is shorter than a minute", d), "-reconcile-every 15m")
		}
		s.ReconcileEvery = d
	}
	if s.ReconcileStale <= 0 || s.ReconcileMaxAge <= s.ReconcileStale {
		return withHint(fmt.Errorf("-reconcile-stale %v and -reconcile-max-age %v: want 0 < stale < max-age", s.ReconcileStale, s.ReconcileMaxAge),
			"-reconcile-stale 1h -reconcile-max-age 720h")
	}
	return nil
}

// reconcileState says in the start-up log line whether serve reconciles.
func (s *Serve) reconcileState() string {
	switch {
	case s.reconciler == nil:
		return "off (no Persona API key)"
	case s.ReconcileEvery == 0:
		return "on request (POST /v1/reconcile)"
	}
	return "every " + s.ReconcileEvery.String()
}
