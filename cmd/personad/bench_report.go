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
	Seed         uint64  `json:"seed"`
	InProcess    bool    `json:"in_process"`
	ChildProcess bool    `json:"child_process,omitempty"`
	Synchronous  string  `json:"synchronous,omitempty"`
	Concurrency  int     `json:"concurrency"`
	Rate         float64 `json:"rate,omitempty"`
	Window       int     `json:"window"`
	daemonRun
	Ceiling *runReport     `json:"ceiling,omitempty"`
	Ratio   *ratioReport   `json:"personad_over_ceiling,omitempty"`
	Compare *compareReport `json:"compare,omitempty"`
}

// daemonRun is one load of one daemon and what verification found.
type daemonRun struct {
	Binary    string        `json:"binary,omitempty"` // the binary run as a child process
	Target    string        `json:"target,omitempty"`
	API       string        `json:"api,omitempty"`
	Personad  *runReport    `json:"personad,omitempty"`
	RSSStart  int64         `json:"rss_start_bytes,omitempty"`
	RSSEnd    int64         `json:"rss_end_bytes,omitempty"`
	RSSPeak   int64         `json:"rss_peak_bytes,omitempty"` // VmHWM, when read from /proc
	RSSSource string        `json:"rss_source,omitempty"`
	Verify    *verifyReport `json:"verify,omitempty"`
	Get       *getReport    `json:"get,omitempty"`

	loadEnd time.Time
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
	// BenchCPUPerRequest is this process's CPU time during the load per
	// request; BenchProcessHolds says what runs in it besides the load
	// generator (the daemon with -serve, the bare server for the ceiling).
	BenchCPUPerRequest float64 `json:"bench_process_cpu_us_per_request,omitempty"`
	BenchProcessHolds  string  `json:"bench_process_holds,omitempty"`
	// DaemonCPUPerEvent is a child daemon's CPU time during the load per
	// acknowledged event.
	DaemonCPUPerEvent float64     `json:"daemon_cpu_us_per_acked_event,omitempty"`
	Soak              *soakReport `json:"soak,omitempty"`
	Interrupted       bool        `json:"interrupted,omitempty"`
}

// soakReport is a -duration run's latency window by window.
type soakReport struct {
	WindowSeconds float64        `json:"window_seconds"`
	Windows       []windowReport `json:"windows"`
	// P99LastOverFirst is the last window's p99 over the first's.
	P99LastOverFirst float64 `json:"p99_last_over_first"`
}

type windowReport struct {
	StartSeconds float64 `json:"start_seconds"`
	Requests     int     `json:"requests"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
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
	if r.cpu > 0 && r.requests > 0 {
		s.BenchCPUPerRequest = microseconds(r.cpu) / float64(r.requests)
	}
	if len(r.windows) > 0 {
		s.Soak = &soakReport{WindowSeconds: r.windowLen.Seconds()}
		for i, w := range r.windows {
			s.Soak.Windows = append(s.Soak.Windows, windowReport{StartSeconds: (time.Duration(i) * r.windowLen).Seconds(),
				Requests: len(w), P50: ms(quantile(w, 0.5)), P99: ms(quantile(w, 0.99))})
		}
		first, last := s.Soak.Windows[0], s.Soak.Windows[len(s.Soak.Windows)-1]
		s.Soak.P99LastOverFirst = ratio(last.P99, first.P99)
	}
	return s
}

func microseconds(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
	if r.BenchCPUPerRequest > 0 {
		fmt.Fprintf(w, "  cpu           bench process %.0f µs/request (%s)", r.BenchCPUPerRequest, r.BenchProcessHolds)
		if r.DaemonCPUPerEvent > 0 {
			fmt.Fprintf(w, "; daemon %.0f µs/acknowledged event", r.DaemonCPUPerEvent)
		}
		fmt.Fprintln(w)
	}
	if r.NotAcked > 0 {
		fmt.Fprintf(w, "  not acknowledged: %s events\n", thousands(int64(r.NotAcked)))
	}
	if r.Soak != nil {
		printSoak(w, r.Soak)
	}
}

// printSoak prints the latency of each window and the last over the first.
func printSoak(w io.Writer, s *soakReport) {
	length := time.Duration(s.WindowSeconds * float64(time.Second))
	fmt.Fprintf(w, "  per %v window (by when each delivery was due or sent; the last takes those sent after -duration):\n", length)
	for i, win := range s.Windows {
		from := time.Duration(i) * length
		fmt.Fprintf(w, "    %8v–%-8v %9s requests  p50 %.1fms  p99 %.1fms\n", from, from+length, thousands(int64(win.Requests)), win.P50, win.P99)
	}
	first, last := s.Windows[0], s.Windows[len(s.Windows)-1]
	fmt.Fprintf(w, "  p99 last/first %.2f× (%.1fms → %.1fms)\n", s.P99LastOverFirst, first.P99, last.P99)
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
