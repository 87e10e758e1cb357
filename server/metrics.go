package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/personad/personad/engine"
)

// Metrics are the Prometheus metrics the handlers record. Wiring code may
// register more collectors (database size, inquiries by status) on the
// same registry.
type Metrics struct {
	Registry      *prometheus.Registry
	deliveries    *prometheus.CounterVec
	signatureFail *prometheus.CounterVec
	ingestSeconds prometheus.Histogram
	batchSize     prometheus.Histogram
	deadLetters   prometheus.Counter
	conflicting   prometheus.Counter // personad_conflicting_redeliveries_total
	duplicates    prometheus.Counter
	anomalies     *prometheus.CounterVec
	redactions    prometheus.Counter
}

// Outcomes of deliveries that stored nothing, beside the engine's: the
// outcome label of personad_deliveries_total is never empty.
const (
	OutcomeRefused     = "refused"     // a 4xx: not authentic, not allowed, too large...
	OutcomeUnavailable = "unavailable" // a 503: the store could not commit; Persona retries
)

// NewMetrics creates the metrics on a new registry that also carries the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "personad_deliveries_total",
			Help: `Webhook deliveries by HTTP status code and outcome: the engine's (applied, inferred, unchanged, rejected, unknown, dead_letter), or "refused" (a 4xx) or "unavailable" (a 503) when nothing was stored.`,
		}, []string{"code", "outcome"}),
		signatureFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "personad_signature_failures_total",
			Help: "Webhook requests refused for their signature, by reason.",
		}, []string{"reason"}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "personad_ingest_seconds",
			Help:    "Time from a verified body to its durable acknowledgement.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "personad_commit_batch_size",
			Help:    "Updates committed together by one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	m.deadLetters = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "personad_dead_letters_total",
		Help: "Deliveries of authentic bodies personad could not read, kept as dead letters (once per body) and acknowledged.",
	})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "personad_duplicate_deliveries_total",
		Help: "Deliveries of an event (or dead-letter body) already stored, acknowledged without change: Persona's retries and duplicates.",
	})
	m.anomalies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "personad_anomalies_total",
		Help: "Anomalies deliveries (and reconciliation, for status_drift) added to inquiries, by kind (see an inquiry's anomalies in the API).",
	}, []string{"kind"})
	m.redactions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "personad_redactions_total",
		Help: "Redaction events stored (of inquiries, accounts and the like), each making personad forget its object's personal data.",
	})
	reg.MustRegister(m.deliveries, m.signatureFail, m.ingestSeconds, m.batchSize, m.deadLetters,
		m.duplicates, m.anomalies, m.redactions,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.conflicting = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "personad_conflicting_redeliveries_total",
		Help: "Deliveries of a stored event id with another body: acknowledged as duplicates, the first body kept, the other kept as a conflict (once per body).",
	})
	reg.MustRegister(m.conflicting)
	for _, r := range []string{ReasonMissing, ReasonMalformed, ReasonExpired, ReasonMismatch} {
		m.signatureFail.WithLabelValues(r)
	}
	for _, k := range []string{engine.AnomalyRejected, engine.AnomalyStatusMismatch, engine.AnomalyUnknownStatus,
		engine.AnomalyUnknownEvent, engine.AnomalyRedecision, engine.AnomalyConflictingRedelivery, engine.AnomalyStatusDrift} {
		m.anomalies.WithLabelValues(k)
	}
	return m
}

// delivery counts one answered delivery; outcome "" (nothing stored) is
// counted as refused, or unavailable for a 5xx.
func (m *Metrics) delivery(status int, outcome string) {
	if outcome == "" {
		outcome = OutcomeRefused
		if status >= 500 {
			outcome = OutcomeUnavailable
		}
	}
	m.deliveries.WithLabelValues(strconv.Itoa(status), outcome).Inc()
}

// ingested counts what a stored (or dead-lettered) delivery did beyond
// its outcome.
func (m *Metrics) ingested(res engine.Result) {
	if res.Duplicate {
		m.duplicates.Inc()
	}
	if res.Redaction {
		m.redactions.Inc()
	}
	for _, a := range res.Anomalies {
		m.anomalies.WithLabelValues(a.Kind).Inc()
	}
}

// Ingested counts what an event ingested outside the webhook path did
// (an event reconciliation recovered from Persona's API): its duplicate,
// redaction and anomalies, as a delivery's are counted.
func (m *Metrics) Ingested(res engine.Result) { m.ingested(res) }

// Anomaly counts one anomaly of kind found outside a delivery: a status
// drift reconciliation recorded.
func (m *Metrics) Anomaly(kind string) { m.anomalies.WithLabelValues(kind).Inc() }

// ObserveBatch records the size of one group commit; give it to the
// store (store.Options.OnBatch).
func (m *Metrics) ObserveBatch(size int) { m.batchSize.Observe(float64(size)) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	// One collector that fails (a database that cannot be read) must not
	// take every other metric down with it.
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
