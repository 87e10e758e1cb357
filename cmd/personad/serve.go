package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/notify"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

// Serve is the daemon: "personad serve". Tests start it on :0 with a temp
// database through ParseFlags, Start and Close, as main does.
type Serve struct {
	stdout, stderr io.Writer
	// Getenv reads the environment (tests replace it).
	Getenv func(string) string

	DBPath         string
	Listen         string
	APIListen      string
	Tolerance      time.Duration
	MaxBody        int64
	AutoDecide     bool
	Synchronous    string
	ForgetWithin   time.Duration
	RetainBodies   time.Duration // 0: keep bodies as received
	MinFree        int64         // /healthz fails below this many free bytes; 0: no check
	AllowIPs       []netip.Prefix
	TrustedProxies []netip.Prefix
	LogFormat      string
	LogLevel       slog.Level
	Pprof          bool
	MaxConns       int // concurrent connections on the webhook listener
	secrets        [][]byte
	apiToken       string
	secretsFile    string       // reread on SIGHUP; "" when the secrets came from the environment
	tokenFile      string       // likewise for the API token
	keys           *server.Keys // what requests are checked against; Reload swaps it
	inflight       atomic.Int64 // requests being handled, for a bounded shutdown

	// StreamHeartbeat is how often an idle change stream sends a comment
	// (0: server.DefaultStreamHeartbeat); no flag sets it, tests do.
	StreamHeartbeat time.Duration

	db       *store.DB
	logger   *slog.Logger
	webhook  *http.Server
	api      *http.Server
	webLn    net.Listener
	apiLn    net.Listener
	serveErr chan error
	wg       sync.WaitGroup
	stopping context.CancelFunc
	retainer *background // the retention loop; nil without -retain-bodies
	notify   notifyFlags
	notifier *notify.Notifier // nil without -notify-url

	// ReconcileEvery is how often serve reconciles with Persona's REST API
	// (0: never); ReconcileStale and ReconcileMaxAge pick the inquiries.
	ReconcileEvery  time.Duration
	ReconcileStale  time.Duration
	ReconcileMaxAge time.Duration
	// ReconcileFirstAfter is the wait for the first background run (0:
	// firstReconcileAfter); no flag sets it, tests do.
	ReconcileFirstAfter time.Duration
	persona             personaFlags
	reconciler          *reconcile.Reconciler // nil without a Persona API key
	reconcileLoop       *background           // nil unless ReconcileEvery > 0
}

// NewServe returns a Serve that writes logs to stderr.
func NewServe(stdout, stderr io.Writer) *Serve {
	return &Serve{stdout: stdout, stderr: stderr, Getenv: os.Getenv}
}

const (
	envSecrets  = "PERSONAD_WEBHOOK_SECRETS"
	envAPIToken = "PERSONAD_API_TOKEN"
)

// ParseFlags reads flags and secrets. Secrets come from the environment or
// files, never from flags. It refuses to configure a daemon that would
// accept unsigned webhooks or serve the API unauthenticated off loopback.
func (s *Serve) ParseFlags(args []string) error {
	fs := newFlagSet("serve", "serve [flags]", s.stderr)
	fs.StringVar(&s.DBPath, "db", "personad.db", "SQLite database file (created if missing)")
	fs.StringVar(&s.Listen, "listen", ":8080", "address for Persona's webhooks (POST "+server.WebhookPath+")")
	fs.StringVar(&s.APIListen, "api-listen", "127.0.0.1:8081", "address for the query API; off loopback it needs an API token")
	fs.DurationVar(&s.Tolerance, "tolerance", 5*time.Minute, "accepted age of a webhook signature, both ways")
	maxBody := fs.String("max-body", "1MiB", "largest webhook body accepted (B, KiB, MiB)")
	fs.BoolVar(&s.AutoDecide, "auto-decide", false, "decide locally: completed ⇒ approved, failed ⇒ declined")
	fs.StringVar(&s.Synchronous, "synchronous", "full", "full: acknowledged events survive power loss; normal: faster, may lose the last acknowledged events on power loss")
	fs.DurationVar(&s.ForgetWithin, "forget-within", time.Second, "after a redaction, how long the WAL may keep the old bodies (0: checkpoint before acknowledging it)")
	fs.DurationVar(&s.RetainBodies, "retain-bodies", 0, "scrub personal data, in the background, from the bodies of events received longer ago than this, e.g. 2160h, keeping ids, statuses, timestamps, SHA-256 and every projection (0: keep bodies as received)")
	fs.StringVar(&s.secretsFile, "webhook-secrets-file", "", "file with webhook secrets, one per line or comma-separated (else $"+envSecrets+"); reread on SIGHUP")
	fs.StringVar(&s.tokenFile, "api-token-file", "", "file holding the query API bearer token (else $"+envAPIToken+"); reread on SIGHUP")
	allow := fs.String("allow-ips", "", "comma-separated CIDRs allowed to post webhooks (default: any)")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed")
	fs.BoolVar(&s.Pprof, "pprof", false, "serve Go's runtime profiles under /debug/pprof/ on the API listener (behind the API token)")
	fs.IntVar(&s.MaxConns, "max-conns", 1024, "most connections the webhook listener holds at once; more wait to be accepted")
	fs.StringVar(&s.LogFormat, "log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "least severe log lines written: debug (adds one line per stored delivery), info, warn or error")
	s.notify.register(fs)
	s.persona.register(fs)
	every := fs.String("reconcile-every", "", "reconcile with Persona's REST API this often, at least 1m (default 15m once a Persona API key is configured; 0: only when asked, POST /v1/reconcile)")
	fs.DurationVar(&s.ReconcileStale, "reconcile-stale", reconcile.DefaultStale, "reconcile the undecided inquiries with no event for longer than this")
	fs.DurationVar(&s.ReconcileMaxAge, "reconcile-max-age", reconcile.DefaultMaxAge, "and not those quiet for longer than this")
	minFree := fs.String("min-free", "64MiB", "/healthz answers 503 when the database's file system has less free space than this (B, KiB, MiB, GiB; 0: no check)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if s.MaxBody, err = parseSize(*maxBody); err != nil {
		return withHint(err, "-max-body 1MiB")
	}
	if *minFree == "0" {
		s.MinFree = 0
	} else if s.MinFree, err = parseSize(*minFree); err != nil {
		return withHint(fmt.Errorf("-min-free: %w", err), "-min-free 64MiB (or 0: no check)")
	}
	if s.Synchronous != "full" && s.Synchronous != "normal" {
		return withHint(fmt.Errorf("unknown -synchronous %q", s.Synchronous), "-synchronous full (or normal)")
	}
	if s.ForgetWithin < 0 {
		return withHint(fmt.Errorf("-forget-within %v is negative", s.ForgetWithin), "-forget-within 1s (or 0)")
	}
	if s.RetainBodies < 0 {
		return withHint(fmt.Errorf("-retain-bodies %v is negative", s.RetainBodies), "-retain-bodies 2160h (90 days; 0 keeps bodies)")
	}
	if s.MaxConns < 1 {
		return withHint(fmt.Errorf("-max-conns %d is not positive", s.MaxConns), "-max-conns 1024")
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return withHint(fmt.Errorf("unknown -log-format %q", s.LogFormat), "-log-format text (or json)")
	}
	if s.LogLevel, err = parseLogLevel(*logLevel); err != nil {
		return withHint(err, "-log-level info (or debug, warn, error)")
	}
	if s.AllowIPs, err = server.ParsePrefixes(*allow); err != nil {
		return withHint(fmt.Errorf("-allow-ips: %w", err), "-allow-ips 203.0.113.0/24,198.51.100.7")
	}
	if s.TrustedProxies, err = server.ParsePrefixes(*proxies); err != nil {
		return withHint(fmt.Errorf("-trusted-proxies: %w", err), "-trusted-proxies 127.0.0.1/32")
	}
	if s.secrets, err = readSecrets(s.Getenv, s.secretsFile); err != nil {
		return err
	}
	if s.apiToken, err = readToken(s.Getenv, s.tokenFile); err != nil {
		return err
	}
	if err := s.notify.check(s.Getenv); err != nil {
		return err
	}
	if err := s.persona.load(s.Getenv, false); err != nil {
		return err
	}
	if err := s.parseReconcile(*every); err != nil {
		return err
	}
	if s.Pprof && s.apiToken == "" {
		return withHint(errors.New("-pprof without an API token: runtime profiles (command line, memory) would be open to anyone who reaches the API listener"),
			"set "+envAPIToken+" or -api-token-file, or drop -pprof")
	}
	if s.apiToken == "" && !isLoopback(s.APIListen) {
		return withHint(fmt.Errorf("-api-listen %s is not on loopback and no API token is set", s.APIListen),
			"set "+envAPIToken+" or -api-token-file, or listen on 127.0.0.1")
	}
	return nil
}

// readSecrets reads webhook secrets from file, else from the environment;
// it is an error to have none.
func readSecrets(getenv func(string) string, file string) ([][]byte, error) {
	raw := getenv(envSecrets)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("-webhook-secrets-file: %w", err)
		}
		raw = string(b)
	}
	// A file saved by a Windows editor starts with a byte order mark.
	raw = strings.TrimPrefix(raw, byteOrderMark)
	var secrets [][]byte
	for _, f := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			secrets = append(secrets, []byte(f))
		}
	}
	if len(secrets) == 0 {
		return nil, withHint(errors.New("no webhook secret configured: personad will not accept unsigned webhooks"),
			"export "+envSecrets+"=wbhsec_... (comma-separated during a rotation) or pass -webhook-secrets-file FILE")
	}
	return secrets, nil
}

// readToken reads the API token from file, else from the environment
// ("" when there is none).
func readToken(getenv func(string) string, file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(strings.TrimPrefix(getenv(envAPIToken), byteOrderMark)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-api-token-file: %w", err)
	}
	tok := strings.TrimSpace(strings.TrimPrefix(string(b), byteOrderMark))
	if tok == "" {
		return "", fmt.Errorf("-api-token-file %s is empty", file)
	}
	return tok, nil
}

// isLoopback reports whether a listen address binds only loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopbackHost(host)
}

// isLoopbackHost reports whether a host name or address is a loopback one.
func isLoopbackHost(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || (err == nil && ip.IsLoopback())
}

// parseSize reads "1MiB", "512KiB", "64KB" or a plain byte count.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// holdPolicy records the decision policy in a new database, and refuses
// one whose recorded policy differs: its decisions were made with that.
func holdPolicy(db *store.DB, path string, p engine.Policy) error {
	ctx := context.Background()
	stored, recorded, err := db.StoredPolicy(ctx)
	switch {
	case err != nil:
		return err
	case !recorded:
		return db.RecordPolicy(ctx, p)
	case stored != p:
		return withHint(fmt.Errorf("%s was served with -auto-decide=%v, and its decisions were made so; this serve has -auto-decide=%v",
			path, stored.AutoDecide, p.AutoDecide),
			fmt.Sprintf("serve with -auto-decide=%v, or change the policy, which folds every inquiry again: personad rebuild -db %s -auto-decide=%v",
				stored.AutoDecide, path, p.AutoDecide))
	}
	return nil
}

// Start opens the database and starts both listeners. It returns once they
// accept connections.
func (s *Serve) Start() error {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	var h slog.Handler = slog.NewTextHandler(s.stderr, opts)
	if s.LogFormat == "json" {
		h = slog.NewJSONHandler(s.stderr, opts)
	}
	s.logger = slog.New(h)
	policy := engine.Policy{AutoDecide: s.AutoDecide}
	metrics := server.NewMetrics()
	registerBuildInfo(metrics)
	keys, err := server.NewKeys(s.secrets, s.apiToken)
	if err != nil {
		return err
	}
	s.keys = keys
	minFree := s.MinFree
	if minFree == 0 {
		minFree = -1 // the store's "no check"
	}
	db, err := store.Open(s.DBPath, store.Options{Synchronous: s.Synchronous, Policy: policy,
		OnBatch: metrics.ObserveBatch, ForgetWithin: s.ForgetWithin, OnForgetOverdue: func() {
			s.logger.Warn("the WAL still holds scrubbed-away data past -forget-within; a reader (backup, Litestream?) is holding an old snapshot",
				"forget_within", s.ForgetWithin)
		}, MinFree: minFree, OnFailed: func(err error) {
			s.logger.Error("database file replaced or deleted under the running daemon: refusing deliveries (503) and failing /healthz until restarted",
				"db", s.DBPath, "err", err)
		}})
	if err != nil {
		return err
	}
	if err := holdPolicy(db, s.DBPath, policy); err != nil {
		db.Close()
		return err
	}
	s.db = db
	registerStoreMetrics(metrics, db)
	eng := engine.New(db, policy)
	webhook, err := server.NewWebhookHandler(server.WebhookConfig{
		Engine: eng, Keys: s.keys, Tolerance: s.Tolerance, MaxBody: s.MaxBody,
		AllowIPs: s.AllowIPs, TrustedProxies: s.TrustedProxies, Logger: s.logger, Metrics: metrics,
	})
	if err != nil {
		db.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(server.WebhookPath, webhook)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"webhooks are posted to `+server.WebhookPath+`"}}`+"\n")
	})
	apiCfg := server.APIConfig{Engine: eng, Keys: s.keys, Logger: s.logger, Metrics: metrics, Profiling: s.Pprof,
		AuditHead: func(ctx context.Context) (int64, [32]byte, error) {
			h, err := db.Head(ctx)
			return h.Seq, h.Chain, err
		}, Health: db.Health, StreamHeartbeat: s.StreamHeartbeat}
	if s.reconciler, err = s.startReconciler(eng, metrics); err != nil {
		db.Close()
		return err
	}
	if s.reconciler != nil {
		apiCfg.Reconcile = s.reconciler.Run
	}
	api := server.NewAPIHandler(apiCfg)

	if s.webLn, err = net.Listen("tcp", s.Listen); err != nil {
		db.Close()
		return fmt.Errorf("-listen: %w", err)
	}
	// Connections past the cap wait in the kernel's accept queue rather
	// than each costing a goroutine and buffers.
	s.webLn = netutil.LimitListener(s.webLn, s.MaxConns)
	if s.apiLn, err = net.Listen("tcp", s.APIListen); err != nil {
		s.webLn.Close()
		db.Close()
		return fmt.Errorf("-api-listen: %w", err)
	}
	if s.notifier, err = s.notify.start(s, eng, metrics); err != nil {
		s.webLn.Close()
		s.apiLn.Close()
		db.Close()
		return err
	}
	errLog := slog.NewLogLogger(h, slog.LevelWarn)
	s.webhook = &http.Server{Handler: s.track(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: errLog}
	s.api = &http.Server{Handler: s.track(api), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: server.MaxWait + 15*time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: errLog}
	// Long polls end with an answer when shutdown starts.
	base, stopping := context.WithCancel(context.Background())
	s.stopping = stopping
	s.api.BaseContext = func(net.Listener) context.Context { return base }
	s.api.RegisterOnShutdown(stopping)
	s.serveErr = make(chan error, 2)
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{s.webhook, s.webLn}, {s.api, s.apiLn}} {
		s.wg.Go(func() {
			if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				s.serveErr <- err
			}
		})
	}
	s.logger.Info("personad serving", "version", Version(), "db", s.DBPath, "webhooks", s.webLn.Addr().String(),
		"api", s.apiLn.Addr().String(), "synchronous", s.Synchronous, "auto_decide", s.AutoDecide,
		"secrets", len(s.secrets), "api_token", s.apiToken != "", "retain_bodies", s.RetainBodies,
		"reconcile", s.reconcileState())
	if s.RetainBodies > 0 {
		s.retainer = goBackground(func(ctx context.Context) { retainLoop(ctx, db, s.RetainBodies, s.logger) })
	}
	if s.reconciler != nil && s.ReconcileEvery > 0 {
		first := s.ReconcileFirstAfter
		if first <= 0 {
			first = min(s.ReconcileEvery, firstReconcileAfter)
		}
		s.reconcileLoop = goBackground(func(ctx context.Context) { reconcileLoop(ctx, s.reconciler, first, s.ReconcileEvery) })
	}
	return nil
}

// WebhookAddr and APIAddr return the bound addresses (after Start).
func (s *Serve) WebhookAddr() string { return s.webLn.Addr().String() }

// APIAddr returns the query API's bound address.
func (s *Serve) APIAddr() string { return s.apiLn.Addr().String() }

// Close stops accepting connections and the retention loop, answers the
// long polls, lets in-flight requests and retention's current chunk
// finish until the deadline of ctx, then cuts the connections still open
// (a stalled upload, a client that does not read) and closes the database.
// Cutting loses nothing acknowledged: an event is acknowledged only once
// committed, and Persona retries what was not.
func (s *Serve) Close(ctx context.Context) error {
	s.retainer.cancel() // a retention pass ends after its current chunk
	s.reconcileLoop.cancel()
	if s.stopping != nil {
		s.stopping() // long polls answer now, not when Shutdown gets to them
	}
	var (
		mu   sync.Mutex
		errs []error
		cut  []string
		both sync.WaitGroup
	)
	for name, srv := range map[string]*http.Server{"webhooks": s.webhook, "api": s.api} {
		if srv == nil {
			continue
		}
		both.Go(func() {
			err := srv.Shutdown(ctx)
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				// Shutdown closed the listeners already; Close cuts the
				// connections, and its error can only be about those.
				srv.Close()
				err = nil
				mu.Lock()
				cut = append(cut, name)
				mu.Unlock()
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	// The pusher stops with the listeners: an attempt under way may
	// finish within the same grace, and its cursor is saved.
	both.Go(func() { s.notifier.Close(ctx) })
	both.Wait()
	s.wg.Wait()
	if len(cut) > 0 {
		// The cut connections' handlers see their body or context end;
		// give them a moment to return before the database closes.
		for deadline := time.Now().Add(handlerGrace); s.inflight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		s.logger.Warn("shutdown: cut the connections still open after the grace period; nothing they sent was acknowledged",
			"listeners", cut, "handlers_running", s.inflight.Load())
	}
	s.retainer.wait()
	s.reconcileLoop.wait()
	if s.db != nil {
		err := s.db.Close()
		if errors.Is(err, store.ErrForgetPending) {
			// Everything is committed; the next start checkpoints again.
			s.logger.Warn("closed with scrubbed-away data still in the WAL: a reader (backup, Litestream?) holds an old snapshot")
			err = nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Shutdown's bounds: after SIGTERM, requests in flight have
// shutdownGrace to finish; then the connections still open are cut and
// their handlers have handlerGrace to return. Together they stay well
// inside the 5 s an orchestrator is commonly given, and inside Persona's
// own 5 s timeout for the deliveries being cut.
const (
	shutdownGrace = 3 * time.Second
	handlerGrace  = time.Second
)

// track counts the requests being handled, so that Close can wait for the
// handlers of connections it cut.
func (s *Serve) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// Run starts the daemon and serves until ctx ends (SIGINT or SIGTERM),
// then shuts down within shutdownGrace+handlerGrace. SIGHUP rereads the
// secrets and token files (see Reload).
func (s *Serve) Run(ctx context.Context) error {
	// Before Start, so that a SIGHUP sent once the daemon is up reloads
	// rather than kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := s.Start(); err != nil {
		return err
	}
	var serveErr error
serving:
	for {
		select {
		case <-hup:
			s.Reload()
		case <-ctx.Done():
			s.logger.Info("shutting down: finishing in-flight requests", "grace_seconds", shutdownGrace.Seconds())
			break serving
		case serveErr = <-s.serveErr:
			s.logger.Error("listener failed", "err", serveErr)
			break serving
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := errors.Join(serveErr, s.Close(shutdown))
	if err == nil {
		s.logger.Info("stopped")
	}
	return err
}
