package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

// registerStoreMetrics adds what only the store knows: database size,
// overdue forgetting and inquiries by status, read when Prometheus scrapes.
func registerStoreMetrics(m *server.Metrics, db *store.DB) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "personad_database_bytes",
		Help: "Size of the database file and its WAL.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := db.Stats(ctx)
		if err != nil {
			return -1
		}
		return float64(st.Bytes)
	}))
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "personad_forget_overdue_seconds",
		Help: "How long past -forget-within the WAL has still held bodies a redaction or retention scrubbed away (a reader holding an old snapshot keeps it from being truncated); 0 when nothing is overdue.",
	}, func() float64 { return db.ForgetOverdue().Seconds() }))
	m.Registry.MustRegister(&statusCollector{db: db, desc: prometheus.NewDesc(
		"personad_inquiries", `Inquiries by status; "none" until an event shows one personad knows.`, []string{"status"}, nil)})
}

type statusCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.db.StatusCounts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range engine.Statuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[""]), "none")
}
