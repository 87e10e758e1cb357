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
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// benchCommand is "personad bench": it delivers a generated stream of
// Persona webhooks the way Persona does, verifies what personad made of
// them against the generator's ground truth, and measures a bare HTTP
// server with the same deliveries for comparison.
type benchCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	serve, keep, rotation, autoDecide bool
	verify, ceiling, json             bool
	url, api                          string
	secretsFile, tokenFile            string
	synchronous                       string
	concurrency, events, window, open int
	retries                           int
	rate, duplicates, twins           float64
	duration, interval, getDuration   time.Duration
	backoff, timeout                  time.Duration
	seed                              uint64

	secret, oldSecret []byte
	token             string
	notify            benchNotify
}

func newBench(stdout, stderr io.Writer) *benchCommand {
	return &benchCommand{stdout: stdout, stderr: stderr, getenv: os.Getenv}
}

// ParseFlags reads the flags; the webhook secret and API token come from
// the environment or files, as for serve.
func (b *benchCommand) ParseFlags(args []string) error {
	fs := newFlagSet("bench", "bench [-serve | -url URL -api URL] [flags]", b.stderr)
	fs.BoolVar(&b.serve, "serve", false, "start a personad daemon in this process (127.0.0.1, temp database) and load it over loopback HTTP")
	fs.BoolVar(&b.keep, "keep", false, "with -serve: keep the temp directory (database and daemon log) afterwards")
	fs.StringVar(&b.synchronous, "synchronous", "full", "with -serve: the daemon's SQLite synchronous mode, full or normal")
	fs.BoolVar(&b.autoDecide, "auto-decide", false, "the target decides completed ⇒ approved, failed ⇒ declined (with -serve: start it so); ground truth follows")
	fs.StringVar(&b.url, "url", "http://localhost:8080"+server.WebhookPath, "webhook URL of a running personad")
	fs.StringVar(&b.api, "api", "http://127.0.0.1:8081", "query API base URL of that personad (verification, RSS, -get-duration)")
	fs.StringVar(&b.secretsFile, "webhook-secrets-file", "", "file with the target's webhook secrets; the first signs (else $"+envSecrets+")")
	fs.StringVar(&b.tokenFile, "api-token-file", "", "file holding the query API bearer token (else $"+envAPIToken+")")
	fs.IntVar(&b.concurrency, "c", 64, "concurrent deliveries (closed loop); with -rate, the most requests in flight")
	fs.Float64Var(&b.rate, "rate", 0, "deliveries per second, open loop: latency counts from each delivery's scheduled time (0: closed loop at -c)")
	fs.IntVar(&b.events, "n", 20000, "events to generate (duplicates and retries come on top)")
	fs.DurationVar(&b.duration, "duration", 0, "generate events for this long instead of -n, e.g. 10m")
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
	fs.BoolVar(&b.ceiling, "ceiling", false, "then replay the same deliveries to a bare net/http server on 127.0.0.1 (default true with -serve)")
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
	if !set["ceiling"] {
		b.ceiling = b.serve
	}
	switch {
	case b.serve && (set["url"] || set["api"] || set["webhook-secrets-file"] || set["api-token-file"]):
		return withHint(errors.New("-serve starts its own daemon with its own secret and token; -url, -api and the secret files are for a running one"),
			"drop -url, -api and the secret files, or drop -serve")
	case !b.serve && b.notify.given():
		return withHint(errors.New("-notify-url and -notify apply to the daemon -serve starts"), "add -serve, or drop them")
	case !b.serve && (set["keep"] || set["synchronous"]):
		return withHint(errors.New("-keep and -synchronous apply to the daemon -serve starts"), "add -serve, or drop them")
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
	if set["duration"] {
		b.events = 0
	}
	if b.serve {
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

// Run starts the daemon when asked, delivers the load, verifies, runs the
// query phase and the ceiling, and reports. It fails when verification
// finds a mismatch.
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

	var daemon *benchDaemon
	target := "personad at " + b.url
	if b.serve {
		var err error
		if daemon, err = b.startDaemon(); err != nil {
			return err
		}
		defer func() {
			if dir := daemon.close(); dir != "" {
				fmt.Fprintf(progress, "kept %s (database and daemon log)\n", dir)
			}
		}()
		target = fmt.Sprintf("in-process personad (synchronous=%s) at %s", b.synchronous, b.url)
	} else if err := b.preflight(ctx, client); err != nil {
		return err
	}
	if b.rotation {
		b.oldSecret = []byte("wbhsec_bench_rotated_out_" + randomHex(8))
	}
	api := &apiClient{client: client, base: b.api, token: b.token}
	out := &benchReport{Seed: b.seed, Target: b.url, API: b.api, InProcess: b.serve, Concurrency: b.concurrency,
		Rate: b.rate, Window: b.window, Synchronous: b.synchronousReport()}

	fmt.Fprintf(report, "personad bench: seed %d, %s, %s, window %d, duplicates %g%% later + %g%% concurrent, rotation %v\n",
		b.seed, b.amount(), b.mode(), b.window, b.duplicates*100, b.twins*100, b.rotation)
	fmt.Fprintf(report, "target: %s, query API %s\n", target, b.api)

	var after int64
	if b.verify && !b.serve {
		var err error
		if after, err = api.feedHead(ctx); err != nil {
			return withHint(fmt.Errorf("reading the change feed's head: %w", err), "-api URL of the target's query API (and its token), or -verify=false")
		}
	}
	rss, rssSource := b.readRSS(ctx, api)
	out.RSSStart, out.RSSSource = rss, rssSource
	fmt.Fprintf(report, "rss at start: %s\n", formatRSS(rss, rssSource))

	res := runLoad(ctx, client, b.loadConfig(b.url, "personad", progress, api))
	loadEnd := time.Now()
	defer b.notify.close()
	out.RSSEnd, _ = b.readRSS(context.WithoutCancel(ctx), api)
	out.Personad = summarizeRun(res)
	printRun(report, "personad", out.Personad)
	if rssSource != "" {
		fmt.Fprintf(report, "  rss           start %s, end %s\n", formatBytes(out.RSSStart), formatRSS(out.RSSEnd, rssSource))
	}
	if res.interrupted {
		b.finish(out)
		return errors.New("interrupted: the load did not finish, nothing was verified")
	}
	if res.acked == 0 {
		b.finish(out)
		return noAcknowledgement(res)
	}

	var failures error
	if !b.verify && len(res.notAcked) > 0 {
		failures = fmt.Errorf("%d events were never acknowledged", len(res.notAcked))
	}
	if b.verify {
		v, err := verify(ctx, api, expectations(res.inquiries), after, b.concurrency)
		if err != nil {
			b.finish(out)
			return withHint(fmt.Errorf("verifying: %w", err), "-api URL of the target's query API (and its token), or -verify=false")
		}
		if b.serve && v.foreign > 0 { // a fresh database: every change is ours
			v.addf("change feed: %d changes of inquiries this run did not generate", v.foreign)
		}
		for _, e := range res.notAcked {
			code, _ := e.lastCode.Load().(string)
			v.addf("event %s (%s of inquiry %s) was never acknowledged; last answer: %s", e.ev.ID, e.ev.Name, e.ev.Inquiry.ID, code)
		}
		out.Verify = summarizeVerification(v, res.inquiries)
		printVerification(report, out.Verify)
		if v.n > 0 {
			// A replay re-sends the same ids: against a database that holds
			// them already, every delivery is a duplicate.
			hint := fmt.Sprintf("inspect an inquiry with GET %s/v1/inquiries/ID/events; replay with -seed %d against a fresh database", b.api, b.seed)
			if b.serve {
				hint = fmt.Sprintf("replay with -seed %d -keep, then personad events -db DIR/personad.db ID", b.seed)
			}
			failures = withHint(fmt.Errorf("%d mismatches between ground truth and the target", v.n), hint)
		}
	}
	if b.getDuration > 0 {
		var ids []string
		for _, t := range res.inquiries {
			ids = append(ids, t.inq.ID)
		}
		g := hammerInquiries(ctx, api, ids, b.concurrency, b.getDuration, b.seed)
		out.Get = summarizeGets(g)
		printGets(report, out.Get)
	}
	if daemon != nil {
		b.notify.report(ctx, report, daemon, loadEnd)
		daemon.stop() // the ceiling runs on an idle machine
	}
	if b.ceiling && ctx.Err() == nil {
		if err := b.runCeiling(ctx, client, res, progress, report, out); err != nil {
			b.finish(out)
			return err
		}
	}
	b.finish(out)
	if ctx.Err() != nil {
		return errors.Join(failures, errors.New("interrupted: the figures after the load are partial"))
	}
	return failures
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

// runCeiling replays the personad run's deliveries to a bare HTTP server.
func (b *benchCommand) runCeiling(ctx context.Context, client *http.Client, personad *loadResult, progress, report io.Writer, out *benchReport) error {
	srv, target, err := startCeiling()
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg := b.loadConfig(target, "ceiling", progress, nil)
	cfg.gen.Events, cfg.duration = personad.generated, 0
	res := runLoad(ctx, client, cfg)
	if res.interrupted {
		return errors.New("interrupted during the ceiling run")
	}
	c := summarizeRun(res)
	out.Ceiling = &c
	addr := strings.TrimSuffix(strings.TrimPrefix(target, "http://"), server.WebhookPath)
	printRun(report, "ceiling (a bare net/http server on "+addr+" answering 200; the same deliveries from the same client)", c)
	p := out.Personad
	out.Ratio = &ratioReport{Throughput: ratio(p.AckedPerSecond, c.AckedPerSecond),
		P50: ratio(p.Latency.P50, c.Latency.P50), P99: ratio(p.Latency.P99, c.Latency.P99)}
	if b.rate > 0 { // both held to the same rate: only latency compares
		fmt.Fprintf(report, "personad/ceiling at a fixed rate: latency p50 %.1f×, p99 %.1f×\n", out.Ratio.P50, out.Ratio.P99)
		return nil
	}
	fmt.Fprintf(report, "personad/ceiling: throughput %.2f×, latency p50 %.1f×, p99 %.1f×\n", out.Ratio.Throughput, out.Ratio.P50, out.Ratio.P99)
	return nil
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
			rss, source := b.readRSS(ctx, api)
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
	if b.serve {
		return b.synchronous
	}
	return ""
}

// readRSS reads the daemon's resident memory from its /metrics, or, with
// -serve, this process's from /proc/self/status. With -serve the two are
// the same process: the daemon and the load generator together.
func (b *benchCommand) readRSS(ctx context.Context, api *apiClient) (int64, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if v, err := api.rss(ctx); err == nil {
		if b.serve {
			return v, "bench process: daemon and load generator, from /metrics"
		}
		return v, "daemon, from /metrics"
	}
	if b.serve {
		if v, err := procRSS(); err == nil {
			return v, "bench process: daemon and load generator, from /proc/self/status"
		}
	}
	return 0, ""
}

// procRSS reads VmRSS from /proc/self/status (Linux).
func procRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
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
	serve   *Serve
	dir     string
	log     *os.File
	keep    bool
	stopped bool
}

// startDaemon starts personad serve on 127.0.0.1:0 with a temp database,
// a random secret and token, and its log in the temp directory.
func (b *benchCommand) startDaemon() (*benchDaemon, error) {
	dir, err := os.MkdirTemp("", "personad-bench-")
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "personad.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.secret = []byte("wbhsec_bench_" + randomHex(16))
	b.token = randomHex(16)
	d := &benchDaemon{serve: NewServe(io.Discard, log), dir: dir, log: log, keep: b.keep}
	notifyArgs, notifySecret, err := b.notify.daemonArgs()
	if err != nil {
		d.close()
		return nil, err
	}
	env := map[string]string{envSecrets: string(b.secret), envAPIToken: b.token, envNotifySecret: notifySecret}
	d.serve.Getenv = func(k string) string { return env[k] }
	args := append([]string{"-db", filepath.Join(dir, "personad.db"), "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0",
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

// stop shuts the daemon down; close also removes its directory unless
// kept, and returns the directory when kept.
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
	d.log.Close()
	if d.keep {
		return d.dir
	}
	os.RemoveAll(d.dir)
	return ""
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
