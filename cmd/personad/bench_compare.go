package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
)

// compareReport is -compare-bin's summary: every round loads the old
// binary and the new one with the same stream (same seed), each as a
// child process on a fresh temp database, alternating which goes first
// so that neither always meets a warmer or cooler machine.
type compareReport struct {
	Old    string         `json:"old_bin"`
	New    string         `json:"new_bin"`
	Rounds []compareRound `json:"rounds"`
	// Medians over the rounds, and their ratios.
	OldMedian      medianReport  `json:"old_median"`
	NewMedian      medianReport  `json:"new_median"`
	CeilingMedian  *medianReport `json:"ceiling_median,omitempty"`
	NewOverOld     ratioReport   `json:"new_over_old"`
	NewOverCeiling *ratioReport  `json:"new_over_ceiling,omitempty"`
	OldOverCeiling *ratioReport  `json:"old_over_ceiling,omitempty"`
}

// compareRound is one round: both binaries, then the ceiling when asked.
type compareRound struct {
	First   string     `json:"first"` // "old" or "new"
	Old     *daemonRun `json:"old"`
	New     *daemonRun `json:"new"`
	Ceiling *runReport `json:"ceiling,omitempty"`
}

// medianReport holds the medians of a binary's runs.
type medianReport struct {
	AckedPerSecond float64 `json:"acked_events_per_second"`
	P50            float64 `json:"latency_p50_ms"`
	P99            float64 `json:"latency_p99_ms"`
	// With -duration: the soak figures.
	P99LastOverFirst float64 `json:"p99_last_over_first,omitempty"`
	RSSPeak          float64 `json:"rss_peak_bytes,omitempty"`
}

// runCompare loads the -compare-bin binary and the new one, -runs rounds.
func (b *benchCommand) runCompare(ctx context.Context, client *http.Client, report, progress io.Writer, out *benchReport) error {
	newBin := b.serveBin
	if newBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return withHint(fmt.Errorf("finding this binary: %w", err), "-serve-bin PATH of the new personad binary")
		}
		newBin = exe
	}
	cmp := &compareReport{Old: b.compareBin, New: newBin}
	out.Compare = cmp
	fmt.Fprintf(report, "compare: old %s, new %s; %d rounds, alternating which goes first, each run a child process on a fresh temp database\n",
		cmp.Old, cmp.New, b.runs)
	var failures error
	for round := range b.runs {
		order := []string{"old", "new"}
		if round%2 == 1 {
			order = []string{"new", "old"}
		}
		r := compareRound{First: order[0]}
		generated := 0
		for _, which := range order {
			bin := map[string]string{"old": cmp.Old, "new": cmp.New}[which]
			label := fmt.Sprintf("round %d, %s", round+1, which)
			run, res, fails, err := b.compareRun(ctx, client, bin, label, report, progress)
			if which == "old" {
				r.Old = run
			} else {
				r.New = run
			}
			if err != nil {
				cmp.Rounds = append(cmp.Rounds, r)
				return fmt.Errorf("%s (%s): %w", label, bin, err)
			}
			if fails != nil {
				failures = errors.Join(failures, fmt.Errorf("%s (%s): %w", label, bin, fails))
			}
			generated = max(generated, res.generated)
		}
		if b.ceiling && ctx.Err() == nil {
			c, err := b.runCeiling(ctx, client, generated, fmt.Sprintf("round %d, ceiling", round+1), progress, report)
			if err != nil {
				cmp.Rounds = append(cmp.Rounds, r)
				return err
			}
			r.Ceiling = c
		}
		cmp.Rounds = append(cmp.Rounds, r)
	}
	cmp.summarize()
	cmp.print(report, b.rate)
	if ctx.Err() != nil {
		return errors.Join(failures, errors.New("interrupted"))
	}
	return failures
}

// compareRun starts bin as a child, loads and verifies it, and stops it.
func (b *benchCommand) compareRun(ctx context.Context, client *http.Client, bin, label string, report, progress io.Writer) (*daemonRun, *loadResult, error, error) {
	d, err := b.startChild(ctx, bin, client)
	if err != nil {
		return nil, nil, nil, err
	}
	b.daemon = d
	defer func() {
		b.daemon = nil
		if dir := d.close(); dir != "" {
			fmt.Fprintf(progress, "kept %s (database and daemon log)\n", dir)
		}
	}()
	fmt.Fprintf(report, "%s: %s serve, a child process (pid %d, synchronous=%s), at %s\n", label, bin, d.pid(), b.synchronous, b.url)
	run, res, failures, err := b.loadAndVerify(ctx, client, label, report, progress)
	run.Binary = bin
	return &run, res, failures, err
}

// summarize computes the medians and their ratios.
func (c *compareReport) summarize() {
	var olds, news []*daemonRun
	var ceilings []*runReport
	for _, r := range c.Rounds {
		olds, news = append(olds, r.Old), append(news, r.New)
		if r.Ceiling != nil {
			ceilings = append(ceilings, r.Ceiling)
		}
	}
	c.OldMedian, c.NewMedian = mediansOf(olds), mediansOf(news)
	c.NewOverOld = medianRatio(c.NewMedian, c.OldMedian)
	if len(ceilings) == len(c.Rounds) {
		runs := make([]*daemonRun, len(ceilings))
		for i, r := range ceilings {
			runs[i] = &daemonRun{Personad: r}
		}
		m := mediansOf(runs)
		c.CeilingMedian = &m
		newOver, oldOver := medianRatio(c.NewMedian, m), medianRatio(c.OldMedian, m)
		c.NewOverCeiling, c.OldOverCeiling = &newOver, &oldOver
	}
}

func mediansOf(runs []*daemonRun) medianReport {
	pick := func(f func(*daemonRun) float64) float64 {
		var v []float64
		for _, r := range runs {
			v = append(v, f(r))
		}
		return median(v)
	}
	m := medianReport{
		AckedPerSecond: pick(func(r *daemonRun) float64 { return r.Personad.AckedPerSecond }),
		P50:            pick(func(r *daemonRun) float64 { return r.Personad.Latency.P50 }),
		P99:            pick(func(r *daemonRun) float64 { return r.Personad.Latency.P99 }),
		RSSPeak:        pick(func(r *daemonRun) float64 { return float64(r.RSSPeak) }),
	}
	if runs[0].Personad.Soak != nil {
		m.P99LastOverFirst = pick(func(r *daemonRun) float64 { return r.Personad.Soak.P99LastOverFirst })
	}
	return m
}

func medianRatio(num, den medianReport) ratioReport {
	return ratioReport{Throughput: ratio(num.AckedPerSecond, den.AckedPerSecond), P50: ratio(num.P50, den.P50), P99: ratio(num.P99, den.P99)}
}

// median returns the middle value, or the mean of the two middle ones.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func (c *compareReport) print(w io.Writer, rate float64) {
	fmt.Fprintf(w, "medians of %d runs each:\n", len(c.Rounds))
	line := func(label string, m medianReport) {
		fmt.Fprintf(w, "  %-8s %9s events/s  p50 %7.1fms  p99 %7.1fms", label, thousands(int64(m.AckedPerSecond)), m.P50, m.P99)
		if m.P99LastOverFirst > 0 {
			fmt.Fprintf(w, "  p99 last/first %.2f×", m.P99LastOverFirst)
		}
		if m.RSSPeak > 0 {
			fmt.Fprintf(w, "  rss peak %s", formatBytes(int64(m.RSSPeak)))
		}
		fmt.Fprintln(w)
	}
	line("old", c.OldMedian)
	line("new", c.NewMedian)
	if c.CeilingMedian != nil {
		line("ceiling", *c.CeilingMedian)
	}
	ratioLine := func(label string, r ratioReport) {
		if rate > 0 { // both held to the same rate: only latency compares
			fmt.Fprintf(w, "%s at a fixed rate (of the medians): latency p50 %.2f×, p99 %.2f×\n", label, r.P50, r.P99)
			return
		}
		fmt.Fprintf(w, "%s (of the medians): throughput %.2f×, latency p50 %.2f×, p99 %.2f×\n", label, r.Throughput, r.P50, r.P99)
	}
	ratioLine("new/old", c.NewOverOld)
	if c.NewOverCeiling != nil {
		ratioLine("new/ceiling", *c.NewOverCeiling)
		ratioLine("old/ceiling", *c.OldOverCeiling)
	}
}
