package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// BenchmarkMetricsPerDelivery is what the webhook handler's metrics cost
// one stored delivery: its latency observation, its count by code and
// outcome, and what it did beyond that (here an anomaly, as a late event
// may add), plus the group commit's batch size that the store reports
// once per batch (counted here once per delivery, an upper bound).
func BenchmarkMetricsPerDelivery(b *testing.B) {
	m := NewMetrics()
	res := engine.Result{Outcome: engine.OutcomeApplied, Anomalies: []engine.Anomaly{{Kind: engine.AnomalyUnknownEvent}}}
	start := time.Now()
	for b.Loop() {
		m.ingestSeconds.Observe(time.Since(start).Seconds())
		m.delivery(http.StatusOK, string(res.Outcome))
		m.ingested(res)
		m.ObserveBatch(32)
	}
}
