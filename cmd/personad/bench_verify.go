package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// apiClient reads personad's query API.
type apiClient struct {
	client *http.Client
	base   string // e.g. http://127.0.0.1:8081
	token  string
}

// get fetches path and returns the status code and body.
func (a *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// inquiry returns an inquiry's projection; found is false on a 404.
func (a *apiClient) inquiry(ctx context.Context, id string) (inq *engine.Inquiry, found bool, err error) {
	code, body, err := a.get(ctx, "/v1/inquiries/"+url.PathEscape(id))
	switch {
	case err != nil:
		return nil, false, err
	case code == http.StatusNotFound:
		return nil, false, nil
	case code != http.StatusOK:
		return nil, false, fmt.Errorf("GET /v1/inquiries/%s: %d %s", id, code, bytes.TrimSpace(body))
	}
	inq = &engine.Inquiry{}
	if err := json.Unmarshal(body, inq); err != nil {
		return nil, false, fmt.Errorf("GET /v1/inquiries/%s: %w", id, err)
	}
	return inq, true, nil
}

// errCursorAhead: the cursor is beyond the feed's head (409 cursor_ahead).
var errCursorAhead = errors.New("the cursor is beyond the change feed's head")

// changes reads one page of the change feed after the cursor.
func (a *apiClient) changes(ctx context.Context, after int64, limit int) ([]engine.Change, int64, error) {
	path := "/v1/changes?after=" + strconv.FormatInt(after, 10) + "&limit=" + strconv.Itoa(limit)
	code, body, err := a.get(ctx, path)
	if err != nil {
		return nil, 0, err
	}
	switch code {
	case http.StatusOK:
	case http.StatusConflict:
		return nil, 0, fmt.Errorf("GET %s: %w", path, errCursorAhead)
	default:
		return nil, 0, fmt.Errorf("GET %s: %d %s", path, code, bytes.TrimSpace(body))
	}
	var page struct {
		Changes []engine.Change `json:"changes"`
		Next    int64           `json:"next"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", path, err)
	}
	return page.Changes, page.Next, nil
}

// feedHead returns the highest seq of the change feed (0 when it is
// empty) without reading it: it doubles, then bisects, the after cursor,
// asking each time whether any change lies beyond.
func (a *apiClient) feedHead(ctx context.Context) (int64, error) {
	beyond := func(after int64) (bool, error) {
		page, _, err := a.changes(ctx, after, 1)
		if errors.Is(err, errCursorAhead) {
			return false, nil
		}
		return len(page) > 0, err
	}
	lo, hi := int64(0), int64(1024) // the head is > lo and, once beyond(hi) is false, ≤ hi
	if ok, err := beyond(0); err != nil || !ok {
		return 0, err
	}
	for {
		ok, err := beyond(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := beyond(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// rss reads process_resident_memory_bytes from the daemon's /metrics.
func (a *apiClient) rss(ctx context.Context) (int64, error) {
	code, body, err := a.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d", code)
	}
	return metricValue(body, "process_resident_memory_bytes")
}

// metricValue finds an unlabelled sample in the Prometheus text format.
func metricValue(exposition []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int64(f), nil
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// expectation is what the target must hold for one generated inquiry once
// the load is over.
type expectation struct {
	id      string
	final   loadgen.State
	tags    []string
	changes int  // real changes in the in-order history of the events sent
	events  int  // inquiry events sent
	inOrder bool // each inquiry event was acknowledged before the next was first sent
}

func expectations(tracks []*inquiryTrack) []expectation {
	exps := make([]expectation, len(tracks))
	for i, t := range tracks {
		exps[i] = expectation{
			id: t.inq.ID, final: t.inq.Final, tags: t.inq.Tags, changes: len(t.inq.Changes),
			events: t.inq.Events, inOrder: !t.outOfOrder.Load(),
		}
	}
	return exps
}

// maxMismatchDetails is how many mismatches are described; the rest are
// counted.
const maxMismatchDetails = 20

// mismatches collects what verification found wrong.
type mismatches struct {
	details []string
	n       int
}

func (m *mismatches) addf(format string, args ...any) {
	m.n++
	if len(m.details) < maxMismatchDetails {
		m.details = append(m.details, fmt.Sprintf(format, args...))
	}
}

// verification is the outcome of checking a target against ground truth.
type verification struct {
	inquiries int // inquiries checked
	inOrder   int // of which delivered in order (their change count is exact)
	changes   int // change-feed rows of those inquiries
	foreign   int // rows about inquiries this run did not generate
	mismatches
}

// projection is the part of GET /v1/inquiries/:id that is checked.
type projection struct {
	found  bool
	state  loadgen.State
	tags   []string
	events int
}

// verify reads every generated inquiry's projection and the change feed
// after the cursor after, and compares them with ground truth. It returns
// an error only when the API cannot be read; what differs is in the
// result's mismatches.
//
// The checks, for each inquiry:
//   - status, decision, redacted and tags equal the ground truth, and
//     event_count equals the inquiry events sent;
//   - every change row's from_status is the previous row's to_status (the
//     first row's is null), no row repeats the previous row's state, and
//     the last row's state is the projection;
//   - the number of rows is at most the number of real changes in the
//     in-order history, and exactly that when the inquiry's events were
//     delivered in order.
//
// Why "at most", and why it is exact in order: personad writes a row when
// a delivery changes the projection, and the projection is always the
// fold, by created-at, of the events stored so far. The generator only
// takes transitions the lifecycle permits, so the fold of any subset of an
// inquiry's events is the state after the latest of them (every inquiry
// event carries the status, and redaction comes last); a late event is
// re-folded but never changes that. The rows are therefore the states of
// the in-order history at the latest event stored so far, a position that
// only moves forward: a subsequence of the in-order states, which changes
// at most as often as the whole sequence does (out-of-order delivery can
// skip changes, never add one; duplicates change nothing). When each event
// reached personad after the previous one was acknowledged, the position
// visits every event in order and the rows are exactly the real changes.
// The bench cannot see commit order, so "in order" is judged from the
// client: an event whose first attempt started before the previous one's
// acknowledgement came back counts as out of order.
//
// Across the feed: seq numbers increase by exactly one from after+1, with
// no gap and no repeat.
func verify(ctx context.Context, api *apiClient, exps []expectation, after int64, workers int) (*verification, error) {
	v := &verification{inquiries: len(exps)}
	proj, err := readProjections(ctx, api, exps, workers)
	if err != nil {
		return nil, err
	}
	for i, e := range exps {
		p := proj[i]
		if e.inOrder {
			v.inOrder++
		}
		switch {
		case !p.found && e.events > 0:
			v.addf("inquiry %s: not found, want %s", e.id, describe(e.final))
			continue
		case !p.found:
			continue
		case e.events == 0:
			v.addf("inquiry %s: found, but none of its events were sent", e.id)
			continue
		}
		if p.state != e.final {
			v.addf("inquiry %s: projection %s, ground truth %s", e.id, describe(p.state), describe(e.final))
		}
		if !slices.Equal(p.tags, e.tags) && !(len(p.tags) == 0 && len(e.tags) == 0) {
			v.addf("inquiry %s: tags %q, ground truth %q", e.id, p.tags, e.tags)
		}
		if p.events != e.events {
			v.addf("inquiry %s: event_count %d, %d inquiry events sent", e.id, p.events, e.events)
		}
	}
	if err := checkFeed(ctx, api, exps, proj, after, v); err != nil {
		return nil, err
	}
	return v, nil
}

// readProjections fetches every inquiry with workers requests at a time.
func readProjections(ctx context.Context, api *apiClient, exps []expectation, workers int) ([]projection, error) {
	proj := make([]projection, len(exps))
	next := make(chan int)
	errs := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				inq, found, err := api.inquiry(ctx, exps[i].id)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				if found {
					proj[i] = projection{found: true, tags: inq.Tags, events: inq.EventCount,
						state: loadgen.State{Status: inq.Status, Decision: inq.Decision, Redacted: inq.Redacted}}
				}
			}
		})
	}
feed:
	for i := range exps {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return proj, ctx.Err()
	}
}

// feedState is what the change feed said so far about one inquiry.
type feedState struct {
	rows int
	last loadgen.State
}

// checkFeed reads the change feed after the cursor and checks it against
// the expectations and the projections read before (see verify).
func checkFeed(ctx context.Context, api *apiClient, exps []expectation, proj []projection, after int64, v *verification) error {
	index := make(map[string]int, len(exps))
	for i, e := range exps {
		index[e.id] = i
	}
	feed := make([]feedState, len(exps))
	cursor, last := after, after
	for {
		page, next, err := api.changes(ctx, cursor, server.MaxChanges)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			switch {
			case c.Seq == last+1:
			case c.Seq <= last:
				v.addf("change feed: seq %d after seq %d (a repeat or out of order)", c.Seq, last)
			default:
				v.addf("change feed: seq %d after seq %d (a gap of %d)", c.Seq, last, c.Seq-last-1)
			}
			last = max(last, c.Seq)
			i, ours := index[c.InquiryID]
			if !ours {
				v.foreign++
				continue
			}
			v.changes++
			f := &feed[i]
			state := loadgen.State{Status: c.ToStatus, Decision: c.Decision, Redacted: c.Redacted}
			if c.FromStatus != f.last.Status {
				v.addf("inquiry %s: change %d is from %s, the previous change went to %s", c.InquiryID, c.Seq, orNone(c.FromStatus), orNone(f.last.Status))
			}
			if state == f.last {
				v.addf("inquiry %s: change %d repeats the previous state %s", c.InquiryID, c.Seq, describe(state))
			}
			f.rows++
			f.last = state
		}
		cursor = next
	}
	for i, e := range exps {
		f := feed[i]
		switch {
		case f.rows > e.changes:
			v.addf("inquiry %s: %d changes in the feed, more than the %d real changes of its history", e.id, f.rows, e.changes)
		case e.inOrder && f.rows != e.changes:
			v.addf("inquiry %s: %d changes in the feed, want exactly %d (delivered in order)", e.id, f.rows, e.changes)
		}
		if proj[i].found && f.last != proj[i].state {
			v.addf("inquiry %s: last change says %s, projection %s", e.id, describe(f.last), describe(proj[i].state))
		}
	}
	return nil
}

func orNone(s engine.Status) string {
	if s == "" {
		return "null"
	}
	return string(s)
}

// describe writes a state as status/decision[/redacted].
func describe(s loadgen.State) string {
	d := orNone(s.Status) + "/" + orNone(s.Decision)
	if s.Redacted {
		d += "/redacted"
	}
	return d
}

// getResult is the outcome of the query API phase.
type getResult struct {
	requests  int64
	elapsed   time.Duration
	latencies []time.Duration
	codes     map[string]int64
}

// hammerInquiries asks for random known inquiries with workers requests
// in flight for d.
func hammerInquiries(ctx context.Context, api *apiClient, ids []string, workers int, d time.Duration, seed uint64) *getResult {
	res := &getResult{codes: map[string]int64{}}
	if len(ids) == 0 {
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, 1<<61+uint64(w)))
			var lat []time.Duration
			codes := map[string]int64{}
			for ctx.Err() == nil {
				t := time.Now()
				code, _, err := api.get(ctx, "/v1/inquiries/"+url.PathEscape(ids[r.IntN(len(ids))]))
				if err != nil && ctx.Err() != nil {
					break // the phase ended mid-request
				}
				lat = append(lat, time.Since(t))
				key := strconv.Itoa(code)
				if err != nil {
					key = "error"
				}
				codes[key]++
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			for k, n := range codes {
				res.codes[k] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = int64(len(res.latencies))
	slices.Sort(res.latencies)
	return res
}
