package notify

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the notifier's metrics, read when Prometheus scrapes:
// attempts delivered (2xx) and failed, how far behind the feed's head
// each endpoint is in changes and in seconds (the age of the oldest
// change not yet acknowledged), and whether it is parked. Endpoints are
// labelled with Redact's form of their URL.
func (n *Notifier) Collector() prometheus.Collector { return &collector{n: n} }

var (
	descDelivered = prometheus.NewDesc("personad_notify_delivered_total",
		"Notification attempts an endpoint acknowledged with a 2xx.", []string{"endpoint"}, nil)
	descFailed = prometheus.NewDesc("personad_notify_failed_total",
		"Notification attempts that failed: no answer within the timeout, a connection error, or a status other than 2xx.", []string{"endpoint"}, nil)
	descLagChanges = prometheus.NewDesc("personad_notify_lag_changes",
		"Changes of the feed an endpoint has not acknowledged yet (the feed's head minus its cursor).", []string{"endpoint"}, nil)
	descLagSeconds = prometheus.NewDesc("personad_notify_lag_seconds",
		"Age of the oldest change an endpoint has not acknowledged yet; 0 when it is caught up.", []string{"endpoint"}, nil)
	descParked = prometheus.NewDesc("personad_notify_parked",
		"1 when personad gave up on an endpoint (it is sent nothing until personad notify -resume), else 0.", []string{"endpoint"}, nil)
)

type collector struct{ n *Notifier }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descFailed, descLagChanges, descLagSeconds, descParked} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, headErr := c.n.cfg.DB.ChangesHead(ctx)
	now := c.n.cfg.Now()
	for _, p := range c.n.pushers {
		p.mu.Lock()
		delivered, failed, cursor, parked := p.delivered, p.failed, p.acked, p.parked
		p.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(delivered), p.label)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(failed), p.label)
		ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, boolValue(parked), p.label)
		if headErr != nil {
			ch <- prometheus.NewInvalidMetric(descLagChanges, headErr)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLagChanges, prometheus.GaugeValue, float64(max(head-cursor, 0)), p.label)
		lag := 0.0
		if head > cursor {
			next, err := c.n.cfg.Engine.Changes(ctx, cursor, 1)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(descLagSeconds, err)
				continue
			}
			if len(next) == 1 {
				lag = max(now.Sub(next[0].At).Seconds(), 0)
			}
		}
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, lag, p.label)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
