package main

import (
	"context"
	"runtime"
	"runtime/debug"
	"strings"
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
		"personad_inquiries", `Inquiries by status; "none" until an event shows one personad knows; "other" (only when there are some) for rows whose status personad does not know.`, []string{"status"}, nil)})
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
		delete(counts, s)
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[""]), "none")
	delete(counts, "")
	// A row with a status personad does not know (a file edited by hand,
	// or written by another version) is counted, under one fixed label:
	// its raw value could be anything, even bytes no label may hold.
	var other int64
	for _, n := range counts {
		other += n
	}
	if other > 0 {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(other), "other")
	}
}

// registerBuildInfo adds personad_build_info, 1 with the build's version,
// VCS revision, Go version and platform as labels, as Prometheus's own
// build_info metrics carry.
func registerBuildInfo(m *server.Metrics) {
	revision := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "personad_build_info",
		Help: "Always 1; the labels say which build of personad is running.",
		ConstLabels: prometheus.Labels{
			// -ldflags can inject anything; a label must be UTF-8.
			"version": strings.ToValidUTF8(Version(), "?"), "revision": revision,
			"goversion": runtime.Version(), "goos": runtime.GOOS, "goarch": runtime.GOARCH,
		},
	})
	g.Set(1)
	m.Registry.MustRegister(g)
}
