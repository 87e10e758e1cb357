package personatest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/internal/persona/personatest"
)

const testKey = "persona_sandbox_FAKETESTKEY"

// base is the time the test data is built around.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock; Sleep advances it, so a client sharing it with the
// server waits without sleeping.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newClock() *clock { return &clock{now: base} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return ctx.Err()
}

func (c *clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

func newServer(tb testing.TB, opts personatest.Options) *personatest.Server {
	tb.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	srv := personatest.New(opts)
	tb.Cleanup(srv.Close)
	return srv
}

var (
	templatesMu sync.Mutex
	templates   = map[string][]byte{}
	stencils    = map[string]stencil{}
)

// template returns testdata/persona/<name>.json.
func template(tb testing.TB, name string) []byte {
	tb.Helper()
	templatesMu.Lock()
	defer templatesMu.Unlock()
	return templateLocked(tb, name)
}

func templateLocked(tb testing.TB, name string) []byte {
	tb.Helper()
	if b, ok := templates[name]; ok {
		return b
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "persona", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	templates[name] = b
	return b
}

// ev describes one event to build from a testdata body.
type ev struct {
	file    string    // testdata/persona body; "inquiry-approved" when empty
	id      string    // event id
	at      time.Time // event created-at
	inquiry string    // payload.data.id
	created time.Time // the inquiry's created-at; base when zero
	status  string    // payload status; the template's when empty
}

const millis = "2006-01-02T15:04:05.000Z07:00"

// stencil is a testdata body with placeholders where body puts an event's
// values: encoding/json once per file, then string replacement, so loading
// thousands of events stays fast under -race.
type stencil struct {
	json   string
	status string // the template's payload status
}

const (
	phEvent   = "@@EVENT-ID@@"
	phAt      = "@@EVENT-AT@@"
	phInquiry = "@@INQUIRY-ID@@"
	phCreated = "@@INQUIRY-CREATED@@"
	phStatus  = "@@STATUS@@"
)

func stencilFor(tb testing.TB, name string) stencil {
	tb.Helper()
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if st, ok := stencils[name]; ok {
		return st
	}
	var doc map[string]any
	if err := json.Unmarshal(templateLocked(tb, name), &doc); err != nil {
		tb.Fatal(err)
	}
	data := doc["data"].(map[string]any)
	data["id"] = phEvent
	attrs := data["attributes"].(map[string]any)
	attrs["created-at"] = phAt
	obj := attrs["payload"].(map[string]any)["data"].(map[string]any)
	obj["id"] = phInquiry
	objAttrs := obj["attributes"].(map[string]any)
	objAttrs["created-at"] = phCreated
	status, _ := objAttrs["status"].(string)
	objAttrs["status"] = phStatus
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	st := stencil{json: string(b), status: status}
	stencils[name] = st
	return st
}

// body builds the webhook body e describes from its testdata template.
func body(tb testing.TB, e ev) []byte {
	tb.Helper()
	if e.file == "" {
		e.file = "inquiry-approved"
	}
	if e.created.IsZero() {
		e.created = base
	}
	st := stencilFor(tb, e.file)
	if e.status == "" {
		e.status = st.status
	}
	quoted := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return []byte(strings.NewReplacer(
		quoted(phEvent), quoted(e.id),
		quoted(phAt), quoted(e.at.Format(millis)),
		quoted(phInquiry), quoted(e.inquiry),
		quoted(phCreated), quoted(e.created.Format(millis)),
		quoted(phStatus), quoted(e.status),
	).Replace(st.json))
}

// add stores the events es describe.
func add(tb testing.TB, srv *personatest.Server, es ...ev) {
	tb.Helper()
	for _, e := range es {
		if err := srv.AddWebhookBody(body(tb, e)); err != nil {
			tb.Fatalf("AddWebhookBody(%s): %v", e.id, err)
		}
	}
}

// get sends GET srv.URL+target with the headers personad's client sends,
// after edit changes the request (when not nil).
func get(tb testing.TB, srv *personatest.Server, target string, edit func(*http.Request)) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+target, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Persona-Version", "2025-12-08")
	req.Header.Set("Key-Inflection", "kebab")
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// resource is the part of a listed item the tests read.
type resource struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		Name      string `json:"name"`
		Status    string `json:"status"`
		CreatedAt string `json:"created-at"`
	} `json:"attributes"`
}

type listPage struct {
	Data  []resource `json:"data"`
	Links struct {
		Prev *string `json:"prev"`
		Next *string `json:"next"`
	} `json:"links"`
}

// walk lists from target, following links.next until it is null, and
// returns the ids in order and the length of each page.
func walk(tb testing.TB, srv *personatest.Server, target string) (ids []string, pages []int) {
	tb.Helper()
	for range 1000 {
		status, _, b := get(tb, srv, target, nil)
		if status != http.StatusOK {
			tb.Fatalf("GET %s: %d %s", target, status, b)
		}
		var p listPage
		if err := json.Unmarshal(b, &p); err != nil || p.Data == nil {
			tb.Fatalf("GET %s: not a list: %v %s", target, err, b)
		}
		pages = append(pages, len(p.Data))
		for _, r := range p.Data {
			ids = append(ids, r.ID)
		}
		if p.Links.Next == nil {
			return ids, pages
		}
		target = *p.Links.Next
	}
	tb.Fatal("more than 1000 pages")
	return nil, nil
}

// errorTitle returns errors[0].title of a Persona-style error body, failing
// when b is not one.
func errorTitle(tb testing.TB, b []byte) string {
	tb.Helper()
	var doc struct {
		Errors []struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Errors) == 0 || doc.Errors[0].Title == "" {
		tb.Fatalf("not a Persona error body: %s", b)
	}
	return doc.Errors[0].Title
}
