package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchReport is the machine-readable summary (-json).
type benchReport struct {
	Seed        uint64        `json:"seed"`
	Target      string        `json:"target"`
	API         string        `json:"api"`
	InProcess   bool          `json:"in_process"`
	Synchronous string        `json:"synchronous,omitempty"`
	Concurrency int           `json:"concurrency"`
	Rate        float64       `json:"rate,omitempty"`
	Window      int           `json:"window"`
	Personad    runReport     `json:"personad"`
	RSSStart    int64         `json:"rss_start_bytes,omitempty"`
	RSSEnd      int64         `json:"rss_end_bytes,omitempty"`
	RSSSource   string        `json:"rss_source,omitempty"`
	Verify      *verifyReport `json:"verify,omitempty"`
	Get         *getReport    `json:"get,omitempty"`
	Ceiling     *runReport    `json:"ceiling,omitempty"`
	Ratio       *ratioReport  `json:"personad_over_ceiling,omitempty"`
}

type runReport struct {
	Events            int              `json:"events"`
	Inquiries         int              `json:"inquiries"`
	AckedEvents       int64            `json:"acked_events"`
	Requests          int64            `json:"requests"`
	Seconds           float64          `json:"seconds"`
	AckedPerSecond    float64          `json:"acked_events_per_second"`
	RequestsPerSecond float64          `json:"requests_per_second"`
	Latency           latencyReport    `json:"latency_ms"`
	StatusCodes       map[string]int64 `json:"status_codes"`
	Retries           int64            `json:"retries"`
	Duplicates        int64            `json:"duplicates_sent"`
	BytesSent         int64            `json:"bytes_sent"`
	AvgBodyBytes      float64          `json:"avg_body_bytes"`
	NotAcked          int              `json:"events_not_acknowledged"`
	BehindScheduleMs  float64          `json:"max_behind_schedule_ms,omitempty"`
	Interrupted       bool             `json:"interrupted,omitempty"`
}

// latencyReport holds exact quantiles of every request's latency, in ms.
type latencyReport struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type verifyReport struct {
	Inquiries   int      `json:"inquiries"`
	InOrder     int      `json:"delivered_in_order"`
	Changes     int      `json:"changes"`
	Foreign     int      `json:"foreign_changes"`
	Others      int      `json:"other_events"`
	OthersAcked int      `json:"other_events_acknowledged"`
	Mismatches  int      `json:"mismatches"`
	Details     []string `json:"details"`
}

type getReport struct {
	Requests    int64            `json:"requests"`
	Seconds     float64          `json:"seconds"`
	PerSecond   float64          `json:"per_second"`
	Latency     latencyReport    `json:"latency_ms"`
	StatusCodes map[string]int64 `json:"status_codes"`
}

type ratioReport struct {
	Throughput float64 `json:"throughput"`
	P50        float64 `json:"latency_p50"`
	P99        float64 `json:"latency_p99"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func latencies(sorted []time.Duration) latencyReport {
	l := latencyReport{P50: ms(quantile(sorted, 0.5)), P90: ms(quantile(sorted, 0.9)), P99: ms(quantile(sorted, 0.99))}
	if len(sorted) > 0 {
		l.Max = ms(sorted[len(sorted)-1])
	}
	return l
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func summarizeRun(r *loadResult) runReport {
	s := runReport{
		Events: r.generated, Inquiries: len(r.inquiries), AckedEvents: r.acked, Requests: r.requests,
		Seconds: r.elapsed.Seconds(), AckedPerSecond: perSecond(r.acked, r.elapsed), RequestsPerSecond: perSecond(r.requests, r.elapsed),
		Latency: latencies(r.latencies), StatusCodes: r.codes, Retries: r.retries, Duplicates: r.duplicates,
		BytesSent: r.bytesSent, NotAcked: len(r.notAcked), BehindScheduleMs: ms(r.lateness), Interrupted: r.interrupted,
	}
	if r.generated > 0 {
		s.AvgBodyBytes = float64(r.bodyBytes) / float64(r.generated)
	}
	return s
}

func printRun(w io.Writer, label string, r runReport) {
	fmt.Fprintf(w, "%s:\n", label)
	fmt.Fprintf(w, "  acknowledged  %s of %s events (%s inquiries) in %.2fs: %s events/s (%s requests, %s/s)\n",
		thousands(r.AckedEvents), thousands(int64(r.Events)), thousands(int64(r.Inquiries)), r.Seconds,
		thousands(int64(r.AckedPerSecond)), thousands(r.Requests), thousands(int64(r.RequestsPerSecond)))
	fmt.Fprintf(w, "  latency       p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	if r.BehindScheduleMs > 0 {
		fmt.Fprintf(w, "  schedule      at worst %.1fms behind the open-loop schedule\n", r.BehindScheduleMs)
	}
	fmt.Fprintf(w, "  answers       %s\n", formatCodes(r.StatusCodes))
	fmt.Fprintf(w, "  retries       %s; duplicates sent %s\n", thousands(r.Retries), thousands(r.Duplicates))
	fmt.Fprintf(w, "  bytes         %s sent; average body %s B\n", formatBytes(r.BytesSent), thousands(int64(r.AvgBodyBytes)))
	if r.NotAcked > 0 {
		fmt.Fprintf(w, "  not acknowledged: %s events\n", thousands(int64(r.NotAcked)))
	}
}

// summarizeVerification also counts the events about other objects
// (accounts, verifications, reports) and how many were acknowledged; each
// one that was not is a mismatch listed by the caller.
func summarizeVerification(v *verification, tracks []*inquiryTrack) *verifyReport {
	r := &verifyReport{Inquiries: v.inquiries, InOrder: v.inOrder, Changes: v.changes, Foreign: v.foreign,
		Mismatches: v.n, Details: append([]string{}, v.details...)}
	for _, t := range tracks {
		r.Others += t.inq.Others
		r.OthersAcked += int(t.othersAcked.Load())
	}
	return r
}

func printVerification(w io.Writer, v *verifyReport) {
	fmt.Fprintf(w, "verify: %s inquiries (%s delivered in order: exact change counts), %s changes read",
		thousands(int64(v.Inquiries)), thousands(int64(v.InOrder)), thousands(int64(v.Changes)))
	if v.Foreign > 0 {
		fmt.Fprintf(w, ", %s of other inquiries", thousands(int64(v.Foreign)))
	}
	fmt.Fprintf(w, "; %s of %s events about other objects acknowledged\n", thousands(int64(v.OthersAcked)), thousands(int64(v.Others)))
	for _, d := range v.Details {
		fmt.Fprintln(w, "  "+d)
	}
	if more := v.Mismatches - len(v.Details); more > 0 {
		fmt.Fprintf(w, "  … and %s more\n", thousands(int64(more)))
	}
	fmt.Fprintf(w, "%d mismatches\n", v.Mismatches)
}

func summarizeGets(g *getResult) *getReport {
	return &getReport{Requests: g.requests, Seconds: g.elapsed.Seconds(), PerSecond: perSecond(g.requests, g.elapsed),
		Latency: latencies(g.latencies), StatusCodes: g.codes}
}

func printGets(w io.Writer, g *getReport) {
	fmt.Fprintf(w, "query API: %s GET /v1/inquiries/:id in %.2fs: %s GET/s\n", thousands(g.Requests), g.Seconds, thousands(int64(g.PerSecond)))
	fmt.Fprintf(w, "  latency       p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms\n", g.Latency.P50, g.Latency.P90, g.Latency.P99, g.Latency.Max)
	fmt.Fprintf(w, "  answers       %s\n", formatCodes(g.StatusCodes))
}

// formatCodes lists answers by count, e.g. "200: 20,411, 503: 3".
func formatCodes(codes map[string]int64) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + thousands(codes[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// thousands writes n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return strconv.FormatInt(n, 10) + " B"
}

func formatLatency(d time.Duration) string { return fmt.Sprintf("%.1fms", ms(d)) }
