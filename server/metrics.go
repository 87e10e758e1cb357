package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
}

// NewMetrics creates the metrics on a new registry that also carries the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "personad_deliveries_total",
			Help: "Webhook deliveries by HTTP status code and event outcome (outcome is empty when the event was not ingested).",
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
	reg.MustRegister(m.deliveries, m.signatureFail, m.ingestSeconds, m.batchSize, m.deadLetters,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.conflicting = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "personad_conflicting_redeliveries_total",
		Help: "Deliveries of a stored event id with another body: acknowledged as duplicates, the first body kept, the other kept as a conflict (once per body).",
	})
	reg.MustRegister(m.conflicting)
	for _, r := range []string{ReasonMissing, ReasonMalformed, ReasonExpired, ReasonMismatch} {
		m.signatureFail.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) delivery(status int, outcome string) {
	m.deliveries.WithLabelValues(strconv.Itoa(status), outcome).Inc()
}

// ObserveBatch records the size of one group commit; give it to the
// store (store.Options.OnBatch).
func (m *Metrics) ObserveBatch(size int) { m.batchSize.Observe(float64(size)) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	// One collector that fails (a database that cannot be read) must not
	// take every other metric down with it.
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
