package main

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// loadConfig says what to deliver, where, and how: the way Persona
// delivers, at a fixed concurrency or a fixed rate.
type loadConfig struct {
	gen       loadgen.Config
	url       string // the webhook URL
	secret    []byte
	oldSecret []byte // when set, each signature also carries a set signed with it (a rotation)

	concurrency int           // workers; with rate, the most requests in flight (twice that with concurrent duplicates)
	rate        float64       // deliveries per second, open loop; 0 runs closed loop
	duration    time.Duration // stop generating after this long; 0 runs until gen.Events

	window     int     // shuffle buffer of this many deliveries
	duplicates float64 // share of events delivered again later, as Persona's retries are
	twins      float64 // share of deliveries made twice at once
	retries    int     // retries of a failed delivery (5xx, 429 or no answer)
	backoff    time.Duration

	interval time.Duration
	onTick   func(tick) // called every interval from one goroutine

	// soakWindow, with duration, splits the latencies into windows of
	// this length by when each delivery was due (open loop) or sent.
	soakWindow time.Duration
}

// tick is one progress interval.
type tick struct {
	elapsed  time.Duration
	acked    float64 // events acknowledged per second in the interval
	requests float64 // requests per second in the interval
	p50, p99 time.Duration
}

// loadResult is what one run delivered and how it went.
type loadResult struct {
	generated   int   // events generated
	bodyBytes   int64 // their total size
	inquiries   []*inquiryTrack
	elapsed     time.Duration
	requests    int64
	acked       int64 // distinct events acknowledged (2xx)
	latencies   []time.Duration
	codes       map[string]int64 // by HTTP status, "error" or "timeout"
	retries     int64
	duplicates  int64 // extra copies sent on purpose: later duplicates and concurrent twins
	bytesSent   int64 // body bytes of every request
	notAcked    []*eventTrack
	lateness    time.Duration     // open loop: the most a delivery left behind its schedule
	windows     [][]time.Duration // with soakWindow: each window's latencies, sorted
	windowLen   time.Duration
	cpu         time.Duration // this process's CPU time during the load; 0 when unknown
	interrupted bool
}

// inquiryTrack is what the bench learns about one inquiry while
// delivering its events.
type inquiryTrack struct {
	inq         *loadgen.Inquiry
	acked       atomic.Uint64 // bit i: the inquiry event with Step i was acknowledged
	othersAcked atomic.Int64
	// outOfOrder is set when an inquiry event was first sent before the
	// previous one was acknowledged: personad may then have committed them
	// in another order than created-at.
	outOfOrder atomic.Bool
}

// eventTrack follows one event through its deliveries.
type eventTrack struct {
	ev           *loadgen.Event
	inq          *inquiryTrack
	sent         atomic.Bool
	acked        atomic.Bool
	firstAttempt atomic.Int64 // unix seconds, for Persona-Webhook-First-Attempted-At
	lastCode     atomic.Value // string: the last answer
}

// delivery is one planned POST of an event.
type delivery struct {
	ev      *eventTrack
	attempt int       // Persona-Webhook-Attempts-Made
	tries   int       // failed retries of this delivery so far
	twin    bool      // send two copies at once
	due     time.Time // open loop: when the schedule wanted it sent
}

// Persona makes up to 8 attempts (reference section 3).
const personaAttempts = 8

// Bodies are rendered ahead of sending, so that the generator's CPU is
// not spent in the client while it measures. A run of a count of events
// renders up to renderAheadCount deliveries before the clock starts (all
// of them for -n up to about 30,000; about 130 MB of bodies at most). A
// run for a duration (a soak: no count) keeps up to renderAheadSoak
// deliveries rendered ahead in a producer goroutine during the load (at a
// rate, a quarter of a second's worth), and sends them after the duration
// is up, for the ground truth covers them.
const (
	renderAheadCount = 1 << 15
	renderAheadSoak  = 1 << 11
)

// renderAhead is how many deliveries cfg keeps rendered ahead.
func renderAhead(cfg loadConfig) int {
	switch {
	case cfg.duration == 0:
		return renderAheadCount
	case cfg.rate > 0:
		return min(max(int(cfg.rate/4), 64), renderAheadSoak)
	}
	return renderAheadSoak
}

type loader struct {
	cfg    loadConfig
	client *http.Client
	queue  chan *delivery
	retry  chan *delivery
	done   chan struct{}
	// outstanding counts deliveries not yet settled (acknowledged, given
	// up, or refused for good); a retry carries its delivery's count.
	outstanding sync.WaitGroup

	rec                                  recorder
	requests, acked, retries, duplicates atomic.Int64
	bytesSent                            atomic.Int64
	failMu                               sync.Mutex
	failed                               []*eventTrack

	// Written by the producer only, read once it is done.
	inquiries []*inquiryTrack
	generated int
	bodyBytes int64
	// Written by the feeder only, read once it is done.
	lateness    time.Duration
	interrupted bool
}

// runLoad generates the stream of cfg.gen and delivers it to cfg.url. It
// returns when every delivery has been acknowledged or given up, or soon
// after ctx ends (the result then says interrupted). The clock starts
// once the first deliveries are rendered (see renderAheadCount).
func runLoad(ctx context.Context, client *http.Client, cfg loadConfig) *loadResult {
	l := &loader{
		cfg: cfg, client: client,
		queue: make(chan *delivery), retry: make(chan *delivery), done: make(chan struct{}),
		rec: recorder{codes: map[string]int64{}},
	}
	rendered := make(chan *delivery, renderAhead(cfg))
	primed, stopGenerating := make(chan struct{}), make(chan struct{})
	var producer sync.WaitGroup
	producer.Go(func() { l.produce(ctx, rendered, stopGenerating, primed) })
	select {
	case <-primed:
	case <-ctx.Done():
	}

	cpuStart, cpuKnown := processCPU()
	start := time.Now()
	l.rec.start(start, cfg.soakWindow, cfg.duration)
	var workers sync.WaitGroup
	for range cfg.concurrency {
		workers.Go(func() { l.work(ctx) })
	}
	stopTicks := make(chan struct{})
	var ticker sync.WaitGroup
	if cfg.onTick != nil && cfg.interval > 0 {
		ticker.Go(func() { l.tick(start, stopTicks) })
	}
	l.feed(ctx, start, rendered, stopGenerating)
	producer.Wait()
	l.outstanding.Wait()
	close(l.done)
	workers.Wait()
	elapsed := time.Since(start)
	cpuEnd, _ := processCPU()
	close(stopTicks)
	ticker.Wait()

	res := &loadResult{
		generated: l.generated, bodyBytes: l.bodyBytes, inquiries: l.inquiries, elapsed: elapsed,
		requests: l.requests.Load(), acked: l.acked.Load(), latencies: l.rec.all, codes: l.rec.codes,
		retries: l.retries.Load(), duplicates: l.duplicates.Load(), bytesSent: l.bytesSent.Load(),
		lateness: l.lateness, windows: l.rec.windows, windowLen: l.rec.windowLen, interrupted: l.interrupted || ctx.Err() != nil,
	}
	if cpuKnown {
		res.cpu = cpuEnd - cpuStart
	}
	slices.Sort(res.latencies)
	for _, w := range res.windows {
		slices.Sort(w)
	}
	seen := map[*eventTrack]bool{}
	for _, e := range l.failed {
		if !e.acked.Load() && !seen[e] {
			seen[e] = true
			res.notAcked = append(res.notAcked, e)
		}
	}
	return res
}

// produce generates events, renders their bodies and schedules their
// deliveries into out, closing primed once out is full or everything is
// in it. Once stop is closed it generates no more events but still puts
// out every delivery of the events generated (the shuffle buffer and the
// later duplicates), so that the ground truth is what is sent. It closes
// out when done, or returns early when ctx ends.
func (l *loader) produce(ctx context.Context, out chan<- *delivery, stop <-chan struct{}, primed chan<- struct{}) {
	defer close(out)
	var once sync.Once
	signal := func() { once.Do(func() { close(primed) }) }
	defer signal()
	gen := loadgen.New(l.cfg.gen)
	sched := newSchedule(l.cfg.gen.Seed, l.cfg.window, l.cfg.duplicates, l.cfg.twins)
	tracks := map[*loadgen.Inquiry]*inquiryTrack{}
	put := func(ds []*delivery) bool {
		for _, d := range ds {
			select {
			case out <- d:
			case <-ctx.Done():
				return false
			}
			if len(out) == cap(out) {
				signal()
			}
		}
		return true
	}
	for {
		select {
		case <-stop:
			put(sched.flush())
			return
		default:
		}
		ev := gen.Next()
		if ev == nil {
			break
		}
		t := tracks[ev.Inquiry]
		if t == nil {
			t = &inquiryTrack{inq: ev.Inquiry}
			tracks[ev.Inquiry] = t
			l.inquiries = append(l.inquiries, t)
		}
		if ev.Inquiry.Done() {
			delete(tracks, ev.Inquiry) // no more events will come for it
		}
		l.generated++
		l.bodyBytes += int64(len(ev.Body))
		if !put(sched.push(&delivery{ev: &eventTrack{ev: ev, inq: t}, attempt: 1})) {
			return
		}
	}
	put(sched.flush())
}

// feed hands the rendered deliveries to the workers, at the rate when
// one is set, until the producer is done, then closes the queue. Once the
// duration is up it tells the producer to stop generating.
func (l *loader) feed(ctx context.Context, start time.Time, rendered <-chan *delivery, stopGenerating chan<- struct{}) {
	defer close(l.queue)
	slot := 0
	stopping := false
	for d := range rendered {
		if ctx.Err() != nil {
			l.interrupted = true
			return
		}
		if !stopping && l.cfg.duration > 0 && time.Since(start) >= l.cfg.duration {
			close(stopGenerating)
			stopping = true
		}
		if l.cfg.rate > 0 {
			d.due = start.Add(time.Duration(float64(slot) / l.cfg.rate * float64(time.Second)))
			slot++
			if wait := time.Until(d.due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					l.interrupted = true
					return
				}
			}
		}
		l.outstanding.Add(1)
		select {
		case l.queue <- d:
			if !d.due.IsZero() {
				l.lateness = max(l.lateness, time.Since(d.due))
			}
		case <-ctx.Done():
			l.outstanding.Done()
			l.interrupted = true
			return
		}
	}
	if ctx.Err() != nil {
		l.interrupted = true
	}
}

// work delivers until every delivery is settled, taking retries first.
func (l *loader) work(ctx context.Context) {
	queue := l.queue
	for {
		select {
		case d := <-l.retry:
			l.deliver(ctx, d)
			continue
		default:
		}
		select {
		case d := <-l.retry:
			l.deliver(ctx, d)
		case d, ok := <-queue:
			if !ok {
				queue = nil
				continue
			}
			l.deliver(ctx, d)
		case <-l.done:
			return
		}
	}
}

// deliver makes one delivery (two requests for a twin) and settles it or
// schedules its retry.
func (l *loader) deliver(ctx context.Context, d *delivery) {
	var ok, retry bool
	if d.twin {
		var twinOK, twinRetry bool
		var wg sync.WaitGroup
		wg.Go(func() { twinOK, twinRetry = l.send(ctx, d) })
		ok, retry = l.send(ctx, d)
		wg.Wait()
		l.duplicates.Add(1)
		ok, retry = ok || twinOK, retry || twinRetry
	} else {
		ok, retry = l.send(ctx, d)
	}
	if d.attempt > 1 && d.tries == 0 {
		l.duplicates.Add(1) // a planned later duplicate (not a retry of a failure)
	}
	switch {
	case ok:
		l.outstanding.Done()
	case retry && d.tries < l.cfg.retries && ctx.Err() == nil:
		l.retries.Add(1)
		next := &delivery{ev: d.ev, attempt: min(d.attempt+1, personaAttempts), tries: d.tries + 1}
		wait := min(l.cfg.backoff<<(2*d.tries), 10*time.Second) // ×4 each time, as Persona's grow
		go func() {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				l.giveUp(next)
				return
			}
			if l.cfg.rate > 0 {
				next.due = time.Now()
			}
			l.retry <- next
		}()
	default:
		l.giveUp(d)
	}
}

func (l *loader) giveUp(d *delivery) {
	l.failMu.Lock()
	l.failed = append(l.failed, d.ev)
	l.failMu.Unlock()
	l.outstanding.Done()
}

// send makes one request and records it. ok: acknowledged; retry: Persona
// would try again (5xx, 429, timeout or no answer).
func (l *loader) send(ctx context.Context, d *delivery) (ok, retry bool) {
	e := d.ev
	start := time.Now()
	if e.sent.CompareAndSwap(false, true) {
		e.firstAttempt.Store(start.Unix())
		if step := e.ev.Step; step > 0 && e.inq.acked.Load()&(1<<(step-1)) == 0 {
			e.inq.outOfOrder.Store(true)
		}
	}
	body := e.ev.Body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.url, bytes.NewReader(body))
	if err != nil {
		return false, false
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	secrets := [][]byte{l.cfg.secret}
	if l.cfg.oldSecret != nil {
		secrets = [][]byte{l.cfg.oldSecret, l.cfg.secret}
	}
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, start, secrets...))
	req.Header.Set("Persona-Webhook-Attempts-Made", strconv.Itoa(d.attempt))
	req.Header.Set("Persona-Webhook-Attempts-Left", strconv.Itoa(max(personaAttempts-d.attempt, 0)))
	req.Header.Set("Persona-Webhook-First-Attempted-At", strconv.FormatInt(cmpOr(e.firstAttempt.Load(), start.Unix()), 10))
	resp, err := l.client.Do(req)
	code := "error"
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = strconv.Itoa(resp.StatusCode)
	} else if isTimeout(err) {
		code = "timeout"
	}
	from := start
	if !d.due.IsZero() {
		from = d.due // open loop: from the scheduled time, so stalls are not hidden
	}
	now := time.Now()
	l.rec.add(from, now.Sub(from), code)
	l.requests.Add(1)
	l.bytesSent.Add(int64(len(body)))
	e.lastCode.Store(code)
	if err != nil {
		return false, true
	}
	if resp.StatusCode/100 == 2 {
		if e.acked.CompareAndSwap(false, true) {
			if e.ev.IsInquiry() {
				e.inq.acked.Or(1 << e.ev.Step)
			} else {
				e.inq.othersAcked.Add(1)
			}
			l.acked.Add(1)
		}
		return true, false
	}
	return false, resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
}

func cmpOr(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// tick reports progress every interval until stop is closed.
func (l *loader) tick(start time.Time, stop <-chan struct{}) {
	t := time.NewTicker(l.cfg.interval)
	defer t.Stop()
	last, lastAcked, lastRequests := start, int64(0), int64(0)
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			lat := l.rec.takeInterval()
			slices.Sort(lat)
			acked, requests := l.acked.Load(), l.requests.Load()
			secs := now.Sub(last).Seconds()
			l.cfg.onTick(tick{
				elapsed: now.Sub(start), acked: float64(acked-lastAcked) / secs, requests: float64(requests-lastRequests) / secs,
				p50: quantile(lat, 0.50), p99: quantile(lat, 0.99),
			})
			last, lastAcked, lastRequests = now, acked, requests
		}
	}
}

// recorder keeps every request's latency and answer.
type recorder struct {
	mu       sync.Mutex
	all      []time.Duration
	interval []time.Duration
	codes    map[string]int64

	// With a window length: the latencies of each window of the load's
	// duration, by when each request's delivery was due or sent; requests
	// after the duration count in the last window.
	begin     time.Time
	windowLen time.Duration
	windows   [][]time.Duration
}

// start sets the load's start, and windows of length window (0: none)
// for a load of the given duration (0: of a count of events).
func (r *recorder) start(begin time.Time, window, duration time.Duration) {
	r.begin = begin
	if window > 0 && duration > 0 {
		r.windowLen = window
		r.windows = make([][]time.Duration, (duration+window-1)/window)
	}
}

func (r *recorder) add(from time.Time, d time.Duration, code string) {
	r.mu.Lock()
	r.all = append(r.all, d)
	r.interval = append(r.interval, d)
	r.codes[code]++
	if r.windowLen > 0 {
		i := min(max(int(from.Sub(r.begin)/r.windowLen), 0), len(r.windows)-1)
		r.windows[i] = append(r.windows[i], d)
	}
	r.mu.Unlock()
}

// takeInterval returns the latencies since the last call.
func (r *recorder) takeInterval() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := r.interval
	r.interval = make([]time.Duration, 0, len(lat))
	return lat
}

// quantile returns the q-quantile of sorted latencies by nearest rank: the
// smallest value with at least q of all values at or below it.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// schedule turns the generated stream into the order of deliveries, as
// Persona's look from the receiving end: a shuffle buffer of window
// deliveries reorders them, some are made twice at once, and some are
// made again later with Persona-Webhook-Attempts-Made 2. It is
// deterministic for a seed, so a second run replays the same deliveries.
type schedule struct {
	r                   *rand.Rand
	window              int
	dupShare, twinShare float64
	buf                 []*delivery
	later               laterQueue
	emitted             int
}

// maxDuplicateLag is how many deliveries later a duplicate comes, at most.
const maxDuplicateLag = 1000

func newSchedule(seed uint64, window int, dupShare, twinShare float64) *schedule {
	return &schedule{r: rand.New(rand.NewPCG(seed, 1<<62)), window: window, dupShare: dupShare, twinShare: twinShare}
}

// push adds a fresh delivery and returns the deliveries to make now.
func (s *schedule) push(d *delivery) []*delivery {
	if s.window == 0 {
		return s.out(d)
	}
	s.buf = append(s.buf, d)
	if len(s.buf) <= s.window {
		return nil
	}
	i := s.r.IntN(len(s.buf))
	d = s.buf[i]
	s.buf[i] = s.buf[len(s.buf)-1]
	s.buf = s.buf[:len(s.buf)-1]
	return s.out(d)
}

// flush returns every delivery still held, in the order to make them.
func (s *schedule) flush() []*delivery {
	var out []*delivery
	s.r.Shuffle(len(s.buf), func(i, j int) { s.buf[i], s.buf[j] = s.buf[j], s.buf[i] })
	for _, d := range s.buf {
		out = append(out, s.out(d)...)
	}
	s.buf = nil
	for s.later.Len() > 0 {
		out = append(out, heap.Pop(&s.later).(laterDelivery).d)
	}
	return out
}

// out emits d, after any later duplicates that are due.
func (s *schedule) out(d *delivery) []*delivery {
	var out []*delivery
	for s.later.Len() > 0 && s.later[0].at <= s.emitted {
		out = append(out, heap.Pop(&s.later).(laterDelivery).d)
		s.emitted++
	}
	d.twin = s.r.Float64() < s.twinShare
	if s.r.Float64() < s.dupShare {
		heap.Push(&s.later, laterDelivery{at: s.emitted + 1 + s.r.IntN(maxDuplicateLag), d: &delivery{ev: d.ev, attempt: 2}})
	}
	s.emitted++
	return append(out, d)
}

type laterDelivery struct {
	at int // emit once this many deliveries were emitted
	d  *delivery
}

type laterQueue []laterDelivery

func (q laterQueue) Len() int           { return len(q) }
func (q laterQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q laterQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *laterQueue) Push(x any)        { *q = append(*q, x.(laterDelivery)) }
func (q *laterQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
