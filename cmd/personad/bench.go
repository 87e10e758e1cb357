package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// benchCommand is "personad bench": it delivers a generated stream of
// Persona webhooks the way Persona does, verifies what personad made of
// them against the generator's ground truth, and measures a bare HTTP
// server with the same deliveries for comparison. The daemon may be a
// running one, one it starts in this process or as a child process, or
// two binaries loaded in turn (-compare-bin).
type benchCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	serve, keep, rotation, autoDecide bool
	verify, ceiling, json             bool
	url, api                          string
	serveBin, compareBin              string
	secretsFile, tokenFile            string
	synchronous                       string
	concurrency, events, window, open int
	retries, runs                     int
	rate, duplicates, twins           float64
	duration, interval, getDuration   time.Duration
	soakWindow                        time.Duration
	backoff, timeout                  time.Duration
	seed                              uint64

	secret, oldSecret []byte
	token             string
	notify            benchNotify
	daemon            benchServer // the daemon of the current run, when the bench started it
}

func newBench(stdout, stderr io.Writer) *benchCommand {
	return &benchCommand{stdout: stdout, stderr: stderr, getenv: os.Getenv}
}

// ParseFlags reads the flags; the webhook secret and API token come from
// the environment or files, as for serve.
func (b *benchCommand) ParseFlags(args []string) error {
	fs := newFlagSet("bench", "bench [-serve | -serve-bin PATH | -compare-bin OLD | -url URL -api URL] [flags]", b.stderr)
	fs.BoolVar(&b.serve, "serve", false, "start a personad daemon in this process (127.0.0.1, temp database) and load it over loopback HTTP")
	fs.StringVar(&b.serveBin, "serve-bin", "", "start the personad binary `PATH` as a child process instead (PATH serve on 127.0.0.1 ports the bench picks, temp database, secret and token in its environment): the daemon in its own process, its RSS and CPU its own")
	fs.StringVar(&b.compareBin, "compare-bin", "", "load the personad binary `OLD` and the new one (-serve-bin, else this binary) in turn, each a child process on a fresh temp database, -runs rounds alternating which goes first; print every run, the medians and new/old")
	fs.IntVar(&b.runs, "runs", 3, "with -compare-bin: rounds, each loading both binaries")
	fs.BoolVar(&b.keep, "keep", false, "with a daemon the bench starts: keep the temp directory (database and daemon log) afterwards")
	fs.StringVar(&b.synchronous, "synchronous", "full", "with a daemon the bench starts: its SQLite synchronous mode, full or normal")
	fs.BoolVar(&b.autoDecide, "auto-decide", false, "the target decides completed ⇒ approved, failed ⇒ declined (a daemon the bench starts is started so); ground truth follows")
	fs.StringVar(&b.url, "url", "http://localhost:8080"+server.WebhookPath, "webhook URL of a running personad")
	fs.StringVar(&b.api, "api", "http://127.0.0.1:8081", "query API base URL of that personad (verification, RSS, -get-duration)")
	fs.StringVar(&b.secretsFile, "webhook-secrets-file", "", "file with the target's webhook secrets; the first signs (else $"+envSecrets+")")
	fs.StringVar(&b.tokenFile, "api-token-file", "", "file holding the query API bearer token (else $"+envAPIToken+")")
	fs.IntVar(&b.concurrency, "c", 64, "concurrent deliveries (closed loop); with -rate, the most requests in flight")
	fs.Float64Var(&b.rate, "rate", 0, "deliveries per second, open loop: latency counts from each delivery's scheduled time (0: closed loop at -c)")
	fs.IntVar(&b.events, "n", 20000, "events to generate (duplicates and retries come on top)")
	fs.DurationVar(&b.duration, "duration", 0, "generate events for this long instead of -n, e.g. 10m (the deliveries rendered ahead are sent after it)")
	fs.DurationVar(&b.soakWindow, "soak-window", time.Minute, "with -duration: report latency p50/p99 per window of this length (by when each delivery was due or sent) and the last window's p99 over the first's")
	fs.IntVar(&b.window, "window", 100, "out-of-order delivery: a shuffle buffer of this many deliveries (0: created-at order)")
	fs.Float64Var(&b.duplicates, "duplicates", 0.02, "share of events delivered again later, as Persona's retries (Attempts-Made 2)")
	fs.Float64Var(&b.twins, "concurrent-duplicates", 0.005, "share of deliveries made twice at the same time")
	fs.BoolVar(&b.rotation, "rotation", false, "sign as during a secret rotation: a second signature set made with an old, wrong secret")
	fs.IntVar(&b.retries, "retries", 3, "retries of a delivery that gets 5xx, 429 or no answer (at most 7, as Persona)")
	fs.DurationVar(&b.backoff, "retry-backoff", 250*time.Millisecond, "wait before the first retry, ×4 for each next one (at most 10s)")
	fs.DurationVar(&b.timeout, "timeout", 5*time.Second, "per-request timeout (Persona waits 5s)")
	fs.Uint64Var(&b.seed, "seed", 0, "seed of the generated stream and schedule; 0 picks one (printed, to replay a run against a fresh database)")
	fs.IntVar(&b.open, "open", 200, "inquiries in progress at once in the stream; their events interleave (those still open when -n is reached are cut short)")
	fs.DurationVar(&b.interval, "interval", 10*time.Second, "progress line every interval")
	fs.BoolVar(&b.json, "json", false, "print a JSON summary on stdout (progress goes to stderr)")
	fs.BoolVar(&b.verify, "verify", true, "after the load, check every inquiry and the change feed against ground truth")
	fs.BoolVar(&b.ceiling, "ceiling", false, "then replay the same deliveries to a bare net/http server on 127.0.0.1 (default true with a daemon the bench starts; with -compare-bin once per round)")
	fs.DurationVar(&b.getDuration, "get-duration", 0, "after verification, GET /v1/inquiries/:id over the generated ids with -c workers for this long (0: off)")
	b.notify.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	starter := b.starter()
	if !set["ceiling"] {
		b.ceiling = starter != ""
	}
	switch {
	case b.serve && (b.serveBin != "" || b.compareBin != ""):
		return withHint(errors.New("-serve runs the daemon in this process; -serve-bin and -compare-bin run binaries as child processes"),
			"drop -serve, or -serve-bin and -compare-bin")
	case starter != "" && (set["url"] || set["api"] || set["webhook-secrets-file"] || set["api-token-file"]):
		return withHint(fmt.Errorf("%s starts its own daemon with its own secret and token; -url, -api and the secret files are for a running one", starter),
			"drop -url, -api and the secret files, or drop "+starter)
	case starter == "" && b.notify.given():
		return withHint(errors.New("-notify-url and -notify apply to the daemon the bench starts"), "add -serve (or -serve-bin), or drop them")
	case starter == "" && (set["keep"] || set["synchronous"]):
		return withHint(errors.New("-keep and -synchronous apply to the daemon the bench starts"), "add -serve (or -serve-bin), or drop them")
	case set["runs"] && b.compareBin == "":
		return withHint(errors.New("-runs applies to -compare-bin"), "add -compare-bin OLD, or drop -runs")
	case b.runs < 1:
		return withHint(errors.New("-runs must be at least 1"), "-runs 3")
	case b.compareBin != "" && (b.notify.local || b.getDuration > 0):
		return withHint(errors.New("-notify and -get-duration are not measured with -compare-bin"), "measure them with -serve-bin, one binary at a time")
	case set["soak-window"] && !set["duration"]:
		return withHint(errors.New("-soak-window applies to a run for a -duration"), "-duration 10m -soak-window 1m")
	case b.soakWindow <= 0:
		return withHint(errors.New("-soak-window must be positive"), "-soak-window 1m")
	case set["duration"] && b.duration <= 0:
		return withHint(errors.New("-duration must be positive"), "-duration 10m")
	case b.retries > maxRetries:
		return withHint(fmt.Errorf("-retries %d: Persona retries at most %d times", b.retries, maxRetries), "-retries 3")
	case set["n"] && set["duration"]:
		return withHint(errors.New("-n and -duration both set"), "-n 20000 for a count of events, or -duration 10m for a soak")
	case b.synchronous != "full" && b.synchronous != "normal":
		return withHint(fmt.Errorf("unknown -synchronous %q", b.synchronous), "-synchronous full (or normal)")
	case b.concurrency < 1:
		return withHint(errors.New("-c must be at least 1"), "-c 64")
	case b.rate < 0 || b.events < 1 || b.duration < 0 || b.window < 0 || b.retries < 0 || b.open < 1:
		return withHint(errors.New("-rate, -n, -duration, -window, -retries and -open must not be negative (-n and -open at least 1)"), "personad bench -h")
	case b.duplicates < 0 || b.duplicates > 1 || b.twins < 0 || b.twins > 1:
		return withHint(errors.New("-duplicates and -concurrent-duplicates are shares between 0 and 1"), "-duplicates 0.02 -concurrent-duplicates 0.005")
	case b.interval <= 0 || b.timeout <= 0 || b.backoff < 0 || b.getDuration < 0:
		return withHint(errors.New("-interval and -timeout must be positive, -retry-backoff and -get-duration not negative"), "personad bench -h")
	}
	for _, bin := range []struct {
		flag string
		path *string
	}{{"-serve-bin", &b.serveBin}, {"-compare-bin", &b.compareBin}} {
		if *bin.path == "" {
			continue
		}
		path, err := exec.LookPath(*bin.path)
		if err != nil {
			return withHint(fmt.Errorf("%s: %w", bin.flag, err), bin.flag+" PATH of a personad binary, e.g. one built with go build -o personad-old ./cmd/personad")
		}
		if *bin.path, err = filepath.Abs(path); err != nil {
			return err
		}
	}
	if set["duration"] {
		b.events = 0
	}
	if starter != "" {
		return nil
	}
	for _, u := range []struct{ flag, value string }{{"-url", b.url}, {"-api", b.api}} {
		if p, err := url.Parse(u.value); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return withHint(fmt.Errorf("%s %q is not an http(s) URL", u.flag, u.value), u.flag+" http://127.0.0.1:8080"+server.WebhookPath)
		}
	}
	b.api = strings.TrimSuffix(b.api, "/")
	secrets, err := readSecrets(b.getenv, b.secretsFile)
	if err != nil {
		return err
	}
	b.secret = secrets[0]
	if b.token, err = readToken(b.getenv, b.tokenFile); err != nil {
		return err
	}
	if p, _ := url.Parse(b.api); b.token != "" && p.Scheme == "http" && !isLoopbackHost(p.Hostname()) {
		fmt.Fprintf(b.stderr, "warning: -api %s is plain HTTP off loopback: the API token travels unencrypted\n", b.api)
	}
	return nil
}

// maxRetries is the most retries Persona makes of one delivery.
const maxRetries = 7

// starter is the flag by which the bench starts its own daemon, or "".
func (b *benchCommand) starter() string {
	switch {
	case b.compareBin != "":
		return "-compare-bin"
	case b.serveBin != "":
		return "-serve-bin"
	case b.serve:
		return "-serve"
	}
	return ""
}

// Run starts the daemon when asked, delivers the load, verifies, runs the
// query phase and the ceiling, and reports; with -compare-bin it does so
// for both binaries, round after round. It fails when verification finds
// a mismatch.
func (b *benchCommand) Run(ctx context.Context) error {
	report, progress := b.stdout, b.stdout
	if b.json {
		report, progress = io.Discard, b.stderr
	}
	if b.seed == 0 {
		b.seed = randomSeed()
	}
	client := newBenchClient(b.concurrency, b.timeout)
	defer client.CloseIdleConnections()
	defer b.notify.close()
	if b.rotation {
		b.oldSecret = []byte("wbhsec_bench_rotated_out_" + randomHex(8))
	}
	out := &benchReport{Seed: b.seed, InProcess: b.serve, ChildProcess: b.serveBin != "" || b.compareBin != "",
		Concurrency: b.concurrency, Rate: b.rate, Window: b.window, Synchronous: b.synchronousReport()}
	fmt.Fprintf(report, "personad bench: seed %d, %s, %s, window %d, duplicates %g%% later + %g%% concurrent, rotation %v\n",
		b.seed, b.amount(), b.mode(), b.window, b.duplicates*100, b.twins*100, b.rotation)
	var err error
	if b.compareBin != "" {
		err = b.runCompare(ctx, client, report, progress, out)
	} else {
		err = b.runOne(ctx, client, report, progress, out)
	}
	if out.Personad != nil || out.Compare != nil {
		b.finish(out)
	}
	return err
}

// runOne loads one target: a running daemon, or one the bench starts.
func (b *benchCommand) runOne(ctx context.Context, client *http.Client, report, progress io.Writer, out *benchReport) error {
	target := "personad at " + b.url
	switch {
	case b.serve:
		d, err := b.startDaemon()
		if err != nil {
			return err
		}
		b.daemon = d
		target = fmt.Sprintf("in-process personad (synchronous=%s) at %s", b.synchronous, b.url)
	case b.serveBin != "":
		d, err := b.startChild(ctx, b.serveBin, client)
		if err != nil {
			return err
		}
		b.daemon = d
		out.Binary = b.serveBin
		target = fmt.Sprintf("%s serve, a child process (pid %d, synchronous=%s), at %s", b.serveBin, d.pid(), b.synchronous, b.url)
	default:
		if err := b.preflight(ctx, client); err != nil {
			return err
		}
	}
	if b.daemon != nil {
		defer func() {
			if dir := b.daemon.close(); dir != "" {
				fmt.Fprintf(progress, "kept %s (database and daemon log)\n", dir)
			}
			b.daemon = nil
		}()
	}
	fmt.Fprintf(report, "target: %s, query API %s\n", target, b.api)

	run, res, failures, err := b.loadAndVerify(ctx, client, "personad", report, progress)
	out.daemonRun = run
	if err != nil {
		return err
	}
	api := &apiClient{client: client, base: b.api, token: b.token}
	if b.getDuration > 0 {
		var ids []string
		for _, t := range res.inquiries {
			ids = append(ids, t.inq.ID)
		}
		g := hammerInquiries(ctx, api, ids, b.concurrency, b.getDuration, b.seed)
		out.Get = summarizeGets(g)
		printGets(report, out.Get)
	}
	if b.daemon != nil {
		b.notify.report(ctx, report, b.daemon.changesHead, run.loadEnd)
		b.daemon.stop() // the ceiling runs on an idle machine
	}
	if b.ceiling && ctx.Err() == nil {
		c, err := b.runCeiling(ctx, client, res.generated, "ceiling", progress, report)
		if err != nil {
			return err
		}
		out.Ceiling = c
		out.Ratio = printRatio(report, "personad/ceiling", b.rate, *out.Personad, *c)
	}
	if ctx.Err() != nil {
		return errors.Join(failures, errors.New("interrupted: the figures after the load are partial"))
	}
	return failures
}

// loadAndVerify delivers the load to b.url and verifies the target. It
// returns what verification found wrong in failures, and in err what
// stopped it: an interruption, no acknowledgement at all, or a query API
// it could not read.
func (b *benchCommand) loadAndVerify(ctx context.Context, client *http.Client, label string, report, progress io.Writer) (run daemonRun, res *loadResult, failures, err error) {
	api := &apiClient{client: client, base: b.api, token: b.token}
	run = daemonRun{Target: b.url, API: b.api}
	var after int64
	if b.verify && b.daemon == nil {
		if after, err = api.feedHead(ctx); err != nil {
			return run, nil, nil, withHint(fmt.Errorf("reading the change feed's head: %w", err), "-api URL of the target's query API (and its token), or -verify=false")
		}
	}
	rss, _, rssSource := b.readRSS(ctx, api)
	run.RSSStart, run.RSSSource = rss, rssSource
	fmt.Fprintf(report, "rss at start: %s\n", formatRSS(rss, rssSource))

	daemonCPU, daemonCPUKnown := b.daemonCPU()
	res = runLoad(ctx, client, b.loadConfig(b.url, label, progress, api))
	run.loadEnd = time.Now()
	daemonCPUEnd, _ := b.daemonCPU()
	run.RSSEnd, run.RSSPeak, _ = b.readRSS(context.WithoutCancel(ctx), api)
	p := summarizeRun(res)
	p.BenchProcessHolds = "load generator"
	if b.serve {
		p.BenchProcessHolds = "load generator and daemon"
	}
	if daemonCPUKnown && res.acked > 0 {
		p.DaemonCPUPerEvent = microseconds(daemonCPUEnd-daemonCPU) / float64(res.acked)
	}
	run.Personad = &p
	printRun(report, label, p)
	if rssSource != "" {
		peak := ""
		if run.RSSPeak > 0 {
			peak = ", peak " + formatBytes(run.RSSPeak)
		}
		fmt.Fprintf(report, "  rss           start %s, end %s%s\n", formatBytes(run.RSSStart), formatRSS(run.RSSEnd, rssSource), peak)
	}
	if res.interrupted {
		return run, res, nil, errors.New("interrupted: the load did not finish, nothing was verified")
	}
	if res.acked == 0 {
		return run, res, nil, noAcknowledgement(res)
	}

	if !b.verify && len(res.notAcked) > 0 {
		failures = fmt.Errorf("%d events were never acknowledged", len(res.notAcked))
	}
	if !b.verify {
		return run, res, failures, nil
	}
	v, err := verify(ctx, api, expectations(res.inquiries), after, b.concurrency)
	if err != nil {
		return run, res, nil, withHint(fmt.Errorf("verifying: %w", err), "-api URL of the target's query API (and its token), or -verify=false")
	}
	if b.daemon != nil && v.foreign > 0 { // a fresh database: every change is ours
		v.addf("change feed: %d changes of inquiries this run did not generate", v.foreign)
	}
	for _, e := range res.notAcked {
		code, _ := e.lastCode.Load().(string)
		v.addf("event %s (%s of inquiry %s) was never acknowledged; last answer: %s", e.ev.ID, e.ev.Name, e.ev.Inquiry.ID, code)
	}
	run.Verify = summarizeVerification(v, res.inquiries)
	printVerification(report, run.Verify)
	if v.n > 0 {
		// A replay re-sends the same ids: against a database that holds
		// them already, every delivery is a duplicate.
		hint := fmt.Sprintf("inspect an inquiry with GET %s/v1/inquiries/ID/events; replay with -seed %d against a fresh database", b.api, b.seed)
		if b.daemon != nil {
			hint = fmt.Sprintf("replay with -seed %d -keep, then personad events -db DIR/personad.db ID", b.seed)
		}
		failures = withHint(fmt.Errorf("%d mismatches between ground truth and the target", v.n), hint)
	}
	return run, res, failures, nil
}

// daemonCPU returns the CPU time of the daemon the bench started, when it
// runs in its own process.
func (b *benchCommand) daemonCPU() (time.Duration, bool) {
	if b.daemon == nil {
		return 0, false
	}
	return b.daemon.cpu()
}

// finish prints the JSON summary when asked.
func (b *benchCommand) finish(out *benchReport) {
	if !b.json {
		return
	}
	enc := json.NewEncoder(b.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

// runCeiling replays a run's deliveries (events generated) to a bare
// HTTP server.
func (b *benchCommand) runCeiling(ctx context.Context, client *http.Client, events int, label string, progress, report io.Writer) (*runReport, error) {
	srv, target, err := startCeiling()
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	cfg := b.loadConfig(target, label, progress, nil)
	cfg.gen.Events, cfg.duration = events, 0
	res := runLoad(ctx, client, cfg)
	if res.interrupted {
		return nil, errors.New("interrupted during the ceiling run")
	}
	c := summarizeRun(res)
	c.BenchProcessHolds = "load generator and bare server"
	addr := strings.TrimSuffix(strings.TrimPrefix(target, "http://"), server.WebhookPath)
	printRun(report, label+" (a bare net/http server on "+addr+" answering 200; the same deliveries from the same client)", c)
	return &c, nil
}

// printRatio prints and returns num over den; at a fixed rate, where both
// keep the same pace, only the latency ratio.
func printRatio(w io.Writer, label string, rate float64, num, den runReport) *ratioReport {
	r := &ratioReport{Throughput: ratio(num.AckedPerSecond, den.AckedPerSecond),
		P50: ratio(num.Latency.P50, den.Latency.P50), P99: ratio(num.Latency.P99, den.Latency.P99)}
	if rate > 0 {
		fmt.Fprintf(w, "%s at a fixed rate: latency p50 %.2f×, p99 %.2f×\n", label, r.P50, r.P99)
		return r
	}
	fmt.Fprintf(w, "%s: throughput %.2f×, latency p50 %.2f×, p99 %.2f×\n", label, r.Throughput, r.P50, r.P99)
	return r
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (b *benchCommand) loadConfig(target, label string, progress io.Writer, api *apiClient) loadConfig {
	cfg := loadConfig{
		gen:         loadgen.Config{Seed: b.seed, Events: b.events, Open: b.open, AutoDecide: b.autoDecide},
		url:         target,
		secret:      b.secret,
		oldSecret:   b.oldSecret,
		concurrency: b.concurrency, rate: b.rate, duration: b.duration,
		window: b.window, duplicates: b.duplicates, twins: b.twins,
		retries: b.retries, backoff: b.backoff, interval: b.interval,
		soakWindow: b.soakWindow,
	}
	cfg.onTick = func(t tick) {
		elapsed := fmt.Sprintf("%5.0fs", t.elapsed.Seconds())
		if b.interval < time.Second {
			elapsed = fmt.Sprintf("%5.1fs", t.elapsed.Seconds())
		}
		line := fmt.Sprintf("[%s %s] %s events/s acked, %s req/s, p50 %s, p99 %s", label, elapsed,
			thousands(int64(t.acked)), thousands(int64(t.requests)), formatLatency(t.p50), formatLatency(t.p99))
		if api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			rss, _, source := b.readRSS(ctx, api)
			cancel()
			if source != "" {
				line += ", rss " + formatBytes(rss)
			}
		}
		fmt.Fprintln(progress, line)
	}
	return cfg
}

func (b *benchCommand) amount() string {
	if b.events > 0 {
		return thousands(int64(b.events)) + " events"
	}
	return "events for " + b.duration.String()
}

func (b *benchCommand) mode() string {
	if b.rate > 0 {
		return fmt.Sprintf("open loop at %g deliveries/s (at most %d in flight)", b.rate, b.concurrency)
	}
	return fmt.Sprintf("closed loop, -c %d", b.concurrency)
}

func (b *benchCommand) synchronousReport() string {
	if b.starter() != "" {
		return b.synchronous
	}
	return ""
}

// readRSS reads the daemon's resident memory now and at its peak (0 when
// unknown): from /proc when the bench started it (with -serve that is this
// process: the daemon and the load generator together), else from its
// /metrics.
func (b *benchCommand) readRSS(ctx context.Context, api *apiClient) (rss, peak int64, source string) {
	if b.daemon != nil {
		if rss, peak, source, err := b.daemon.memory(); err == nil {
			return rss, peak, source
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if v, err := api.rss(ctx); err == nil {
		if b.serve {
			return v, 0, "bench process: daemon and load generator, from /metrics"
		}
		return v, 0, "daemon, from /metrics"
	}
	return 0, 0, ""
}

func formatRSS(v int64, source string) string {
	if source == "" {
		return "unknown (no process_resident_memory_bytes on /metrics)"
	}
	return formatBytes(v) + " (" + source + ")"
}

// preflight checks that a running target answers before loading it.
func (b *benchCommand) preflight(ctx context.Context, client *http.Client) error {
	u, _ := url.Parse(b.url)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	conn, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", host)
	if err != nil {
		return withHint(fmt.Errorf("-url %s: %w", b.url, err), "start personad serve first, or run personad bench -serve")
	}
	conn.Close()
	if !b.verify && b.getDuration == 0 {
		return nil
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.api+"/healthz", nil)
	resp, err := client.Do(req)
	if err != nil {
		return withHint(fmt.Errorf("-api %s: %w", b.api, err), "-api URL of the target's query API, or -verify=false")
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return withHint(fmt.Errorf("-api %s: /healthz answered %s", b.api, resp.Status), "check the daemon's log; -api must be its query API")
	}
	return nil
}

// noAcknowledgement explains a run in which nothing was acknowledged.
func noAcknowledgement(res *loadResult) error {
	err := fmt.Errorf("no event was acknowledged (answers: %s)", formatCodes(res.codes))
	switch {
	case res.codes["401"] > 0:
		return withHint(err, "the signing secret is not one the target verifies with: set "+envSecrets+" or -webhook-secrets-file to its secret")
	case res.codes["error"]+res.codes["timeout"] > 0:
		return withHint(err, "check that -url reaches personad's webhook listener")
	}
	return withHint(err, "check the daemon's log")
}

// benchDaemon is the personad -serve starts in this process.
type benchDaemon struct {
	serve *Serve
	benchDir
	stopped bool
}

func (d *benchDaemon) memory() (rss, peak int64, source string, err error) {
	rss, peak, err = procMemory("self")
	return rss, peak, "bench process: daemon and load generator, from /proc/self/status", err
}

func (d *benchDaemon) cpu() (time.Duration, bool) { return 0, false }

func (d *benchDaemon) changesHead(ctx context.Context) (int64, error) {
	return d.serve.db.ChangesHead(ctx)
}

// benchDir is the temp directory of a daemon the bench starts (its
// database) and the daemon's log file in it; keep leaves it on the disk.
type benchDir struct {
	dir  string
	log  *os.File
	keep bool
}

func newBenchDir(keep bool) (benchDir, error) {
	dir, err := os.MkdirTemp("", "personad-bench-")
	if err != nil {
		return benchDir{}, err
	}
	log, err := os.Create(filepath.Join(dir, "personad.log"))
	if err != nil {
		os.RemoveAll(dir)
		return benchDir{}, err
	}
	return benchDir{dir: dir, log: log, keep: keep}, nil
}

// release closes the log and removes the directory unless it is kept;
// kept is its path then.
func (d benchDir) release() (kept string) {
	d.log.Close()
	if d.keep {
		return d.dir
	}
	os.RemoveAll(d.dir)
	return ""
}

// startDaemon starts personad serve on 127.0.0.1:0 with a temp database,
// a random secret and token, and its log in the temp directory.
func (b *benchCommand) startDaemon() (*benchDaemon, error) {
	bd, err := newBenchDir(b.keep)
	if err != nil {
		return nil, err
	}
	b.secret = []byte("wbhsec_bench_" + randomHex(16))
	b.token = randomHex(16)
	d := &benchDaemon{serve: NewServe(io.Discard, bd.log), benchDir: bd}
	notifyArgs, notifySecret, err := b.notify.daemonArgs()
	if err != nil {
		d.close()
		return nil, err
	}
	env := map[string]string{envSecrets: string(b.secret), envAPIToken: b.token, envNotifySecret: notifySecret}
	d.serve.Getenv = func(k string) string { return env[k] }
	args := append([]string{"-db", filepath.Join(d.dir, "personad.db"), "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0",
		"-synchronous", b.synchronous}, notifyArgs...)
	if b.autoDecide {
		args = append(args, "-auto-decide")
	}
	if err := d.serve.ParseFlags(args); err != nil {
		d.close()
		return nil, err
	}
	if err := d.serve.Start(); err != nil {
		d.close()
		return nil, err
	}
	b.url = "http://" + d.serve.WebhookAddr() + server.WebhookPath
	b.api = "http://" + d.serve.APIAddr()
	return d, nil
}

func (d *benchDaemon) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.serve.Close(ctx)
}

func (d *benchDaemon) close() (kept string) {
	d.stop()
	return d.release()
}

// startCeiling starts the bare server: it reads each body and answers 200.
func startCeiling() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	return srv, "http://" + ln.Addr().String() + server.WebhookPath, nil
}

// newBenchClient returns the one client every phase shares, with enough
// idle connections per host for every worker (and concurrent duplicates).
func newBenchClient(concurrency int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2*concurrency + 8,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     16 << 10, // the headers and a body of up to 8 KB in one write
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomSeed() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return max(binary.LittleEndian.Uint64(b[:])>>12, 1) // short enough to type back
}
