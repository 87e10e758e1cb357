// Package notify pushes personad's change feed to the application: every
// change, to each configured URL, as a Standard Webhooks message
// (standardwebhooks.com) signed with HMAC-SHA256, in feed order, at least
// once.
//
// Each endpoint has a cursor in the database, the seq of the last change
// it acknowledged with a 2xx. Its pusher reads the changes after the
// cursor from the store (the engine's commit notice only wakes it up, and
// a poll covers commits the engine could not report), sends them one at a
// time, the next only after the previous was acknowledged, and moves the
// cursor after each 2xx. A crash may send a change again (receivers
// deduplicate by webhook-id, "chg_<seq>"); nothing is ever skipped.
// Failed attempts are retried with exponential backoff and jitter until
// the endpoint has failed for Config.GiveUp; then, or at once on 410
// Gone, the endpoint is parked until store.ResumeNotifyEndpoint.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// Defaults for Config.
const (
	DefaultGiveUp     = 72 * time.Hour
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 10 * time.Minute
	DefaultTimeout    = 5 * time.Second
	DefaultPoll       = time.Second
	DefaultParkPoll   = 2 * time.Second
)

// batch is how many changes a pusher reads from the feed at a time.
const batch = 256

// saveEvery is how often, at most, a pusher writes its cursor while it
// sends: a crash sends again what was acknowledged since the last write.
const saveEvery = 200 * time.Millisecond

// Config configures a Notifier.
type Config struct {
	Engine *engine.Engine // the feed and the projections
	DB     *store.DB      // the endpoints' cursors
	URLs   []string       // absolute http(s) URLs
	Key    []byte         // the HMAC key (ParseSecret)
	// FromStart makes an endpoint the database does not know yet start
	// from the feed's first change instead of its head.
	FromStart bool
	// GiveUp is how long an endpoint may fail before it is parked
	// (DefaultGiveUp when 0).
	GiveUp time.Duration
	// MinBackoff is the wait before the first retry; each next one waits
	// twice as long, up to MaxBackoff, each with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one attempt (DefaultTimeout when 0).
	Timeout time.Duration
	// Poll is how often an idle pusher reads the feed without being woken
	// (DefaultPoll); ParkPoll how often a parked one checks whether it was
	// resumed (DefaultParkPoll).
	Poll, ParkPoll time.Duration
	UserAgent      string
	Logger         *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *Config) normalize() error {
	if c.Engine == nil || c.DB == nil {
		return errors.New("notify: Engine and DB are required")
	}
	if len(c.Key) == 0 {
		return errors.New("notify: no signing key")
	}
	for _, u := range c.URLs {
		if err := CheckURL(u); err != nil {
			return err
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.GiveUp, DefaultGiveUp)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.Timeout, DefaultTimeout)
	def(&c.Poll, DefaultPoll)
	def(&c.ParkPoll, DefaultParkPoll)
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "personad"
	}
	return nil
}

// CheckURL says whether u can be an endpoint: an absolute http or https
// URL with a host and no fragment.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("notify URL %q does not parse", Redact(u))
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Errorf("notify URL %s is not http or https", Redact(u))
	case p.Host == "":
		return fmt.Errorf("notify URL %s has no host", Redact(u))
	case p.Fragment != "":
		return fmt.Errorf("notify URL %s has a fragment", Redact(u))
	}
	return nil
}

// Redact returns u without its user info and query, which may hold
// credentials: what logs and metric labels show of an endpoint.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User = nil
	if p.RawQuery != "" {
		p.RawQuery = ""
		p.ForceQuery = true
	}
	p.Fragment = ""
	return p.String()
}

// Notifier runs one pusher per endpoint.
type Notifier struct {
	cfg     Config
	pushers []*pusher
	stop    chan struct{} // closed when Close starts: no new attempt
	cut     context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// Start registers every endpoint in the database (a new one starts from
// the feed's head, or its first change with FromStart) and starts pushing.
// Errors: a bad configuration, and the store's.
func Start(ctx context.Context, cfg Config) (*Notifier, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	abort, cut := context.WithCancel(context.Background())
	n := &Notifier{cfg: cfg, stop: make(chan struct{}), cut: cut}
	seen, labels := map[string]bool{}, map[string]bool{}
	for _, u := range cfg.URLs {
		if seen[u] {
			continue
		}
		seen[u] = true
		ep, err := cfg.DB.RegisterNotifyEndpoint(ctx, u, cfg.FromStart, cfg.Now())
		if err != nil {
			cut()
			return nil, err
		}
		p := newPusher(n, ep, abort)
		// Two URLs that differ only in what Redact hides get labels
		// that differ all the same: a metric's labels must be unique.
		for i := 2; labels[p.label]; i++ {
			p.label = fmt.Sprintf("%s#%d", Redact(u), i)
		}
		labels[p.label] = true
		n.pushers = append(n.pushers, p)
	}
	for _, p := range n.pushers {
		n.wg.Go(p.run)
		n.wg.Go(p.saveLoop)
	}
	return n, nil
}

// Close stops the pushers: no attempt starts after it is called, an
// attempt under way may finish until ctx ends (then it is cut, and its
// change is sent again on the next start), and each endpoint's cursor is
// saved. A nil Notifier closes at once.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.once.Do(func() { close(n.stop) })
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.cut()
		<-done
	}
	n.cut()
	return nil
}

// Endpoint is what a running pusher knows about its endpoint.
type Endpoint struct {
	URL    string
	Cursor int64 // the last change acknowledged
	Parked bool
}

// Endpoints returns the state of every endpoint being pushed to.
func (n *Notifier) Endpoints() []Endpoint {
	if n == nil {
		return nil
	}
	out := make([]Endpoint, len(n.pushers))
	for i, p := range n.pushers {
		p.mu.Lock()
		out[i] = Endpoint{URL: p.url, Cursor: p.acked, Parked: p.parked}
		p.mu.Unlock()
	}
	return out
}

// pusher sends the feed to one endpoint.
type pusher struct {
	n      *Notifier
	cfg    *Config
	url    string
	label  string // Redact(url)
	client *http.Client
	abort  context.Context // cut at the end of Close's grace
	save   chan struct{}   // the acknowledged cursor moved; closed when run ends
	rng    *rand.Rand      // jitter; used by run only

	mu           sync.Mutex
	acked        int64 // the last change acknowledged (2xx)
	stored       int64 // the cursor the database holds
	parked       bool
	failingSince time.Time
	// unrecorded is the park the database has not taken yet (its write
	// failed): waitResumed writes it again rather than read the endpoint's
	// row, still unparked, as a resume.
	unrecorded func() error
	delivered  uint64 // attempts answered 2xx
	failed     uint64 // attempts that were not
}

func newPusher(n *Notifier, ep store.NotifyEndpoint, abort context.Context) *pusher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	return &pusher{
		n: n, cfg: &n.cfg, url: ep.URL, label: Redact(ep.URL), abort: abort,
		client: &http.Client{Transport: tr,
			// A signed message goes where it was configured to, and only
			// there: a redirect is a failed attempt.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		save:  make(chan struct{}, 1),
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		acked: ep.Cursor, stored: ep.Cursor, parked: ep.Parked(),
		// The give-up clock counts time spent retrying: it starts again at
		// each start, so that a daemon that was down longer than
		// -notify-give-up does not park a failing endpoint at its first
		// attempt, without a single retry.
		failingSince: time.Time{},
	}
}

func (p *pusher) stopping() bool {
	select {
	case <-p.n.stop:
		return true
	default:
		return false
	}
}

// run sends the changes after the cursor until Close.
func (p *pusher) run() {
	defer close(p.save) // saveLoop saves the last cursor and ends
	log := p.cfg.Logger.With("endpoint", p.label)
	if p.isParked() {
		log.Error("notify endpoint is parked: nothing is sent to it until it is resumed",
			"hint", "personad notify -db FILE -resume URL")
	}
	for !p.stopping() {
		if p.isParked() {
			p.waitResumed(log)
			continue
		}
		wake := p.cfg.Engine.Changed() // taken before the read: no commit falls between
		p.mu.Lock()
		after := p.acked
		p.mu.Unlock()
		changes, err := p.cfg.Engine.Changes(p.abort, after, batch)
		if err != nil {
			if !p.stopping() {
				log.Warn("notify: reading the change feed failed; retrying", "err", err)
			}
			p.sleep(p.cfg.Poll)
			continue
		}
		if len(changes) == 0 {
			t := time.NewTimer(p.cfg.Poll)
			select {
			case <-wake:
			case <-t.C:
			case <-p.n.stop:
			}
			t.Stop()
			continue
		}
		for _, c := range changes {
			if !p.deliver(c, log) {
				break
			}
		}
	}
}

// sleep waits d or until Close.
func (p *pusher) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.n.stop:
	}
}

func (p *pusher) isParked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parked
}

// waitResumed checks the database every ParkPoll until the endpoint is
// resumed (personad notify -resume) or Close.
func (p *pusher) waitResumed(log *slog.Logger) {
	for !p.stopping() {
		if p.unrecorded != nil {
			if err := p.unrecorded(); err != nil {
				p.sleep(p.cfg.ParkPoll)
				continue
			}
			p.unrecorded = nil
		}
		ep, found, err := p.cfg.DB.NotifyEndpoint(p.abort, p.url)
		if err == nil && found && !ep.Parked() {
			p.mu.Lock()
			p.parked, p.failingSince = false, time.Time{}
			p.acked, p.stored = max(p.acked, ep.Cursor), max(p.stored, ep.Cursor)
			cursor := p.acked
			p.mu.Unlock()
			log.Info("notify endpoint resumed", "cursor", cursor)
			return
		}
		p.sleep(p.cfg.ParkPoll)
	}
}

// deliver sends c until it is acknowledged (true), or the endpoint is
// parked or Close was called (false).
func (p *pusher) deliver(c engine.Change, log *slog.Logger) bool {
	for attempt := 0; ; attempt++ {
		if p.stopping() {
			return false
		}
		code, err := p.post(c)
		if p.abort.Err() != nil {
			return false // cut by Close: not the endpoint's failure
		}
		now := p.cfg.Now()
		if err == nil && code >= 200 && code < 300 {
			p.mu.Lock()
			p.delivered++
			p.acked = c.Seq
			recovered := !p.failingSince.IsZero()
			p.failingSince = time.Time{}
			p.mu.Unlock()
			select {
			case p.save <- struct{}{}:
			default:
			}
			if recovered {
				log.Info("notify endpoint recovered", "seq", c.Seq, "attempts", attempt+1)
				if err := p.cfg.DB.NotifyRecovered(p.abort, p.url); err != nil && p.abort.Err() == nil {
					log.Warn("notify: recording the recovery failed", "err", err)
				}
			}
			return true
		}
		reason := describe(code, err, p.cfg.Timeout)
		p.mu.Lock()
		p.failed++
		if p.failingSince.IsZero() {
			p.failingSince = now
		}
		since := p.failingSince
		p.mu.Unlock()
		if err := p.cfg.DB.NotifyFailing(p.abort, p.url, since, reason); err != nil && p.abort.Err() == nil {
			log.Warn("notify: recording the failure failed", "err", err)
		}
		switch {
		case code == http.StatusGone:
			p.park(c, now, "the endpoint answered 410 Gone", since, log)
			return false
		case now.Sub(since) >= p.cfg.GiveUp:
			p.park(c, now, fmt.Sprintf("failing for %s (the -notify-give-up limit): %s", now.Sub(since).Round(time.Second), reason), since, log)
			return false
		}
		wait := min(p.backoff(attempt), since.Add(p.cfg.GiveUp).Sub(now))
		log.Warn("notify: delivery failed; retrying", "seq", c.Seq, "webhook_id", MessageID(c.Seq),
			"attempt", attempt+1, "reason", reason, "retry_in", wait.Round(time.Millisecond).String(), "failing_since", since)
		p.sleep(wait)
	}
}

// backoff is the wait after the attempt-th failed attempt (from 0):
// MinBackoff doubled each time up to MaxBackoff, of which a random half
// is taken off, so that endpoints failing together do not retry together.
func (p *pusher) backoff(attempt int) time.Duration {
	d := p.cfg.MinBackoff
	for range attempt {
		if d >= p.cfg.MaxBackoff/2 {
			d = p.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	return d/2 + time.Duration(p.rng.Int64N(int64(d/2)+1))
}

// park gives up on the endpoint: it is sent nothing until resumed.
func (p *pusher) park(c engine.Change, now time.Time, reason string, since time.Time, log *slog.Logger) {
	p.mu.Lock()
	p.parked = true
	cursor := p.acked
	p.mu.Unlock()
	record := func() error { return p.cfg.DB.ParkNotifyEndpoint(p.abort, p.url, cursor, now, reason) }
	if err := record(); err != nil {
		log.Error("notify: recording that the endpoint is parked failed; it stays parked, and the record is retried", "err", err)
		p.unrecorded = record
	} else {
		p.mu.Lock()
		p.stored = max(p.stored, cursor)
		p.mu.Unlock()
	}
	log.Error("NOTIFY ENDPOINT PARKED: personad gave up on it and sends it nothing more until it is resumed; the changes after its cursor wait for it",
		"reason", reason, "failing_since", since, "cursor", cursor, "waiting_seq", c.Seq,
		"hint", "fix the endpoint, then run: personad notify -db FILE -resume URL")
}

// saveLoop writes the acknowledged cursor to the database when it moved,
// one write at a time and at most one per saveEvery, so that a fast
// endpoint costs a few small group-committed writes a second rather than
// one per change; the last cursor is written when run ends. A crash between an acknowledgement and
// its write sends that change again.
func (p *pusher) saveLoop() {
	for range p.save {
		p.flush(p.abort)
		// At most one write per saveEvery: an idle writer would commit
		// (and fsync) each one on its own, which ingest pays for.
		t := time.NewTimer(saveEvery)
		select {
		case <-t.C:
		case <-p.n.stop:
		}
		t.Stop()
	}
	// Close: write what was acknowledged, even after the grace was cut.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.flush(ctx)
}

func (p *pusher) flush(ctx context.Context) {
	p.mu.Lock()
	acked, stored := p.acked, p.stored
	p.mu.Unlock()
	if acked <= stored {
		return
	}
	if err := p.cfg.DB.AdvanceNotifyCursor(ctx, p.url, acked, p.cfg.Now()); err != nil {
		if ctx.Err() == nil {
			p.cfg.Logger.Warn("notify: saving the cursor failed; it is saved with the next acknowledgement (a restart before then sends those changes again)",
				"endpoint", p.label, "cursor", acked, "err", err)
		}
		return
	}
	p.mu.Lock()
	p.stored = max(p.stored, acked)
	p.mu.Unlock()
}

// describe says why an attempt failed, without the URL (which may hold
// credentials).
func describe(code int, err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error()
	}
	return fmt.Sprintf("answered %d %s", code, http.StatusText(code))
}
