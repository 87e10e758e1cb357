package personatest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/internal/persona"
	"github.com/personad/personad/internal/persona/personatest"
)

// newClient is personad's real client for srv, on clk (its waits advance
// clk instead of sleeping), without a client-side rate limit unless
// perMinute is set.
func newClient(tb testing.TB, srv *personatest.Server, clk *clock, perMinute float64) *persona.Client {
	tb.Helper()
	if perMinute == 0 {
		perMinute = -1
	}
	c, err := persona.New(persona.Config{
		BaseURL:       srv.URL,
		APIKey:        testKey,
		RatePerMinute: perMinute,
		Sleep:         clk.Sleep,
		Now:           clk.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// allEvents lists every event of objectID with c, page by page.
func allEvents(tb testing.TB, c *persona.Client, objectID string) (ids []string, pages int) {
	tb.Helper()
	after := ""
	for range 100 {
		page, err := c.ListEvents(context.Background(), objectID, after)
		if err != nil {
			tb.Fatalf("ListEvents(%s, %q): %v", objectID, after, err)
		}
		pages++
		for _, e := range page.Events {
			ids = append(ids, e.ID)
		}
		if page.Next == "" {
			return ids, pages
		}
		after = page.Next
	}
	tb.Fatal("more than 100 pages")
	return nil, 0
}

func TestClientListsEventsThroughFaults(t *testing.T) {
	clk := newClock()
	// Every 2nd request a 429 burst, every 3rd a 500: no page comes at the
	// first try after the first.
	srv := newServer(t, personatest.Options{Burst429Every: 2, Fail500Every: 3, Now: clk.Now})
	evs, want := pairedEvents("inq_main", 250) // pairs share a created-at, also across page ends
	noise, _ := pairedEvents("inq_other", 40)
	add(t, srv, shuffled(append(evs, noise...))...)

	got, pages := allEvents(t, newClient(t, srv, clk, 0), "inq_main")
	if !slices.Equal(got, want) {
		t.Errorf("events: got %d, want %d, each once, newest first", len(got), len(want))
	}
	if pages != 3 {
		t.Errorf("pages: got %d, want 3", pages)
	}
	sleeps := clk.Sleeps()
	if !slices.Contains(sleeps, time.Second) {
		t.Errorf("client never waited the burst's Retry-After: 1; sleeps %v", sleeps)
	}
	if srv.Requests() <= pages {
		t.Errorf("Requests %d: the faults forced no retries", srv.Requests())
	}
	if got := srv.RateLimited(); got != 0 {
		t.Errorf("RateLimited: got %d, want 0 (no rate set)", got)
	}
}

func TestClientObeysRateLimit(t *testing.T) {
	clk := newClock()
	const limit = 4
	srv := newServer(t, personatest.Options{RatePerMinute: limit, Now: clk.Now})
	evs, want := pairedEvents("inq_main", 450)
	add(t, srv, evs...)
	c := newClient(t, srv, clk, 0) // no client-side limit: it must be told off
	got, pages := allEvents(t, c, "inq_main")
	if !slices.Equal(got, want) {
		t.Errorf("events: got %d, want %d, each once, newest first", len(got), len(want))
	}
	// Concurrent calls all go out before any answer can slow the client
	// down, so some of them meet the limit.
	var wg sync.WaitGroup
	for range 2 * limit {
		wg.Go(func() {
			if status, _, err := c.GetInquiry(context.Background(), "inq_main"); err != nil || status != "approved" {
				t.Errorf("GetInquiry: %q, %v", status, err)
			}
		})
	}
	wg.Wait()
	if pages != 5 {
		t.Errorf("pages: got %d, want 5", pages)
	}
	if got := srv.RateLimited(); got == 0 {
		t.Errorf("RateLimited: 0; %d requests within the limit of %d/min do not test it", srv.Requests(), limit)
	}
	if got := srv.MaxInWindow(time.Minute); got > limit {
		t.Errorf("MaxInWindow(1m): got %d, over the limit %d", got, limit)
	}
	if got, want := srv.RequestsTo("/api/v1/events")+srv.RequestsWithPrefix("/api/v1/inquiries/"), srv.Requests(); got != want {
		t.Errorf("per-path counts %d, total %d", got, want)
	}
}

func TestClientReconcileLoad(t *testing.T) {
	clk := newClock()
	srv := newServer(t, personatest.Options{Now: clk.Now})
	const n = 1000
	files := []string{"inquiry-created", "inquiry-started", "inquiry-transitioned", "inquiry-completed", "inquiry-approved"}
	wantStatus := map[string]string{}
	var all []ev
	for i := range n {
		id := fmt.Sprintf("inq_%04d", i)
		created := base.Add(time.Duration(i) * time.Minute)
		for k, f := range files {
			e := ev{file: f, id: fmt.Sprintf("evt_%04d_%d", i, k), at: created.Add(time.Duration(k) * time.Second), inquiry: id, created: created}
			if k == len(files)-1 && i%3 == 0 {
				e.file = "inquiry-declined"
			}
			all = append(all, e)
		}
		wantStatus[id] = "approved"
		if i%3 == 0 {
			wantStatus[id] = "declined"
		}
	}
	add(t, srv, shuffled(all)...)
	for i := 0; i < n; i += 100 {
		id := fmt.Sprintf("inq_%04d", i)
		srv.SetStatus(id, "needs_review")
		wantStatus[id] = "needs_review"
	}

	c := newClient(t, srv, clk, 0)
	ctx := context.Background()
	from := base.Add(500 * time.Minute)
	var gotIDs []string
	pages, after := 0, ""
	for {
		page, err := c.ListInquiries(ctx, from, after)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, inq := range page.Inquiries {
			gotIDs = append(gotIDs, inq.ID)
			if inq.Status != wantStatus[inq.ID] {
				t.Errorf("%s: status %q, want %q", inq.ID, inq.Status, wantStatus[inq.ID])
			}
			if inq.CreatedAt.Before(from) {
				t.Errorf("%s: created %v, before %v", inq.ID, inq.CreatedAt, from)
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	var wantIDs []string
	for i := n - 1; i >= 500; i-- {
		wantIDs = append(wantIDs, fmt.Sprintf("inq_%04d", i))
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("ListInquiries: got %d ids, want inq_0999..inq_0500 (inclusive start) each once", len(gotIDs))
	}
	if pages != 5 || srv.RequestsTo("/api/v1/inquiries") != 5 {
		t.Errorf("pages %d, requests %d; want 5: a page that empties the list has next null",
			pages, srv.RequestsTo("/api/v1/inquiries"))
	}

	for _, i := range []int{0, 1, 500, 999} {
		id := fmt.Sprintf("inq_%04d", i)
		got, _ := allEvents(t, c, id)
		want := []string{}
		for k := len(files) - 1; k >= 0; k-- {
			want = append(want, fmt.Sprintf("evt_%04d_%d", i, k))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s events: got %v, want %v", id, got, want)
		}
		status, _, err := c.GetInquiry(ctx, id)
		if err != nil || status != wantStatus[id] {
			t.Errorf("GetInquiry(%s) = %q, %v; want %q", id, status, err, wantStatus[id])
		}
	}
	if _, _, err := c.GetInquiry(ctx, "inq_nope"); !errors.Is(err, persona.ErrNotFound) {
		t.Errorf("GetInquiry unknown: got %v, want ErrNotFound", err)
	}
}

func TestClientWrongKey(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	c, err := persona.New(persona.Config{BaseURL: srv.URL, APIKey: "persona_sandbox_WRONG", RatePerMinute: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListEvents(context.Background(), "inq_a", "")
	var apiErr *persona.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.RequestID == "" {
		t.Errorf("ListEvents with a wrong key: got %v, want a 401 *persona.Error with a request id", err)
	}
	if got := srv.Requests(); got != 1 {
		t.Errorf("Requests: got %d, want 1 (a 401 is not retried)", got)
	}
}
