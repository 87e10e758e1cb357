package personatest_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/internal/persona/personatest"
)

// pairedEvents returns n events for inquiry, two per second, so half the
// order is decided by the id tie-break; newest first they are ids n-1..0.
func pairedEvents(inquiry string, n int) (evs []ev, newestFirst []string) {
	for i := range n {
		id := fmt.Sprintf("evt_%s_%04d", inquiry, i)
		evs = append(evs, ev{id: id, at: base.Add(time.Duration(i/2) * time.Second), inquiry: inquiry})
		newestFirst = append(newestFirst, id)
	}
	slices.Reverse(newestFirst)
	return evs, newestFirst
}

// shuffled returns evs in a fixed random order, so the fake has to sort.
func shuffled(evs []ev) []ev {
	out := slices.Clone(evs)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestListEventsPaging(t *testing.T) {
	tests := []struct {
		n, size int
		want    []int // page lengths
	}{
		{n: 25, size: 10, want: []int{10, 10, 5}},
		{n: 20, size: 10, want: []int{10, 10}}, // the last full page has next null
		{n: 9, size: 10, want: []int{9}},
		{n: 0, size: 10, want: []int{0}},
		{n: 3, size: 1, want: []int{1, 1, 1}},
		{n: 250, size: 100, want: []int{100, 100, 50}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d by %d", tt.n, tt.size), func(t *testing.T) {
			srv := newServer(t, personatest.Options{})
			evs, want := pairedEvents("inq_a", tt.n)
			noise, _ := pairedEvents("inq_b", 7)
			add(t, srv, shuffled(append(evs, noise...))...)
			got, pages := walk(t, srv, fmt.Sprintf("/api/v1/events?filter[object-id]=inq_a&page[size]=%d", tt.size))
			if !slices.Equal(pages, tt.want) {
				t.Errorf("page lengths: got %v, want %v", pages, tt.want)
			}
			if len(want) == 0 {
				want = nil
			}
			if !slices.Equal(got, want) {
				t.Errorf("ids:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

func TestListEventsItemIsWebhookData(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	raw := template(t, "inquiry-approved")
	if err := srv.AddWebhookBody(raw); err != nil {
		t.Fatal(err)
	}
	_, _, b := get(t, srv, "/api/v1/events?filter[object-id]=inq_kT4xVnR2bPmYwL9sTgD3cExZ", nil)
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data) != 1 {
		t.Fatalf("list: %v %s", err, b)
	}
	var hook struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &hook); err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(page.Data[0], &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(hook.Data, &want); err != nil {
		t.Fatal(err)
	}
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("item differs from the webhook's data:\ngot  %s\nwant %s", g, w)
	}
}

func TestListEventsTiesAndUnmodifiedTestdata(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	// approved and completed share a created-at; created is older.
	for _, name := range []string{"inquiry-completed", "inquiry-created", "inquiry-approved"} {
		if err := srv.AddWebhookBody(template(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := walk(t, srv, "/api/v1/events?filter[object-id]=inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	want := []string{"evt_hIjKlMnOpQrStUvWxYzAbCdE", "evt_dEfGhIjKlMnOpQrStUvWxYzA", "evt_aBcDeFgHiJkLmNoPqRsTuVwX"}
	if !slices.Equal(got, want) {
		t.Errorf("order: got %v, want %v", got, want)
	}
	// The tie goes to the higher event id, the approved one.
	_, _, b := get(t, srv, "/api/v1/inquiries/inq_kT4xVnR2bPmYwL9sTgD3cExZ", nil)
	var doc struct{ Data resource }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := doc.Data.Attributes.Status, "approved"; got != want {
		t.Errorf("status: got %q, want %q", got, want)
	}
}

func TestListEventsFilters(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	names := []string{"inquiry-created", "inquiry-started", "inquiry-approved", "inquiry-completed"}
	var all []string
	for i := range 12 {
		id := fmt.Sprintf("evt_%02d", i)
		add(t, srv, ev{file: names[i%4], id: id, at: base.Add(time.Duration(i) * time.Minute), inquiry: "inq_a"})
		all = append(all, id)
	}
	add(t, srv, ev{id: "evt_other", at: base.Add(time.Hour), inquiry: "inq_b"})
	slices.Reverse(all)
	tests := []struct {
		name, query string
		want        []string
	}{
		{"one name", "filter[object-id]=inq_a&filter[name]=inquiry.approved&page[size]=2",
			[]string{"evt_10", "evt_06", "evt_02"}},
		{"two names", "filter[object-id]=inq_a&filter[name]=inquiry.created,inquiry.started&page[size]=5",
			[]string{"evt_09", "evt_08", "evt_05", "evt_04", "evt_01", "evt_00"}},
		{"unknown name", "filter[object-id]=inq_a&filter[name]=inquiry.nope", nil},
		{"unknown object", "filter[object-id]=inq_zzz", nil},
		{"object only", "filter[object-id]=inq_a&page[size]=5", all},
		{"other object", "filter[object-id]=inq_b", []string{"evt_other"}},
		{"no filter", "page[size]=4", append([]string{"evt_other"}, all...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := walk(t, srv, "/api/v1/events?"+tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPageParameters(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	evs, _ := pairedEvents("inq_a", 120)
	add(t, srv, evs...)
	tests := []struct {
		name, target string
		wantStatus   int
		wantLen      int
	}{
		{"default size", "/api/v1/events?filter[object-id]=inq_a", 200, 10},
		{"size 1", "/api/v1/events?filter[object-id]=inq_a&page[size]=1", 200, 1},
		{"size 100", "/api/v1/events?filter[object-id]=inq_a&page[size]=100", 200, 100},
		{"size 0", "/api/v1/events?filter[object-id]=inq_a&page[size]=0", 400, 0},
		{"size 101", "/api/v1/events?filter[object-id]=inq_a&page[size]=101", 400, 0},
		{"size -1", "/api/v1/events?filter[object-id]=inq_a&page[size]=-1", 400, 0},
		{"size x", "/api/v1/events?filter[object-id]=inq_a&page[size]=x", 400, 0},
		{"size empty", "/api/v1/events?filter[object-id]=inq_a&page[size]=", 400, 0},
		{"unknown cursor", "/api/v1/events?filter[object-id]=inq_a&page[after]=evt_nope", 400, 0},
		{"inquiries size 101", "/api/v1/inquiries?page[size]=101", 400, 0},
		{"inquiries bad start", "/api/v1/inquiries?filter[created-at-start]=yesterday", 400, 0},
		{"inquiries unknown cursor", "/api/v1/inquiries?page[after]=inq_nope", 400, 0},
		{"inquiries default size", "/api/v1/inquiries", 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, b := get(t, srv, tt.target, nil)
			if status != tt.wantStatus {
				t.Fatalf("status: got %d, want %d: %s", status, tt.wantStatus, b)
			}
			if status != http.StatusOK {
				errorTitle(t, b)
				return
			}
			var p listPage
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if got := len(p.Data); got != tt.wantLen {
				t.Errorf("items: got %d, want %d", got, tt.wantLen)
			}
		})
	}
}

func TestNextLinkKeepsFiltersAndCursor(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	evs, want := pairedEvents("inq_a", 5)
	add(t, srv, evs...)
	_, _, b := get(t, srv, "/api/v1/events?filter[object-id]=inq_a&filter[name]=inquiry.approved&page[size]=2", nil)
	var p listPage
	if err := json.Unmarshal(b, &p); err != nil || p.Links.Next == nil {
		t.Fatalf("first page: %v %s", err, b)
	}
	if p.Links.Prev != nil {
		t.Errorf("prev: got %q, want null", *p.Links.Prev)
	}
	u, err := url.Parse(*p.Links.Next)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Path, "/api/v1/events"; got != want {
		t.Errorf("next path: got %q, want %q", got, want)
	}
	q := u.Query()
	for k, v := range map[string]string{
		"filter[object-id]": "inq_a",
		"filter[name]":      "inquiry.approved",
		"page[size]":        "2",
		"page[after]":       want[1],
	} {
		if got := q.Get(k); got != v {
			t.Errorf("next %s: got %q, want %q", k, got, v)
		}
	}
}

func TestListInquiries(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	var all []string
	for i := 1; i <= 7; i++ {
		id := fmt.Sprintf("inq_%d", i)
		created := base.Add(time.Duration(i) * time.Hour)
		status := "approved"
		if i%2 == 0 {
			status = "declined"
		}
		add(t, srv, ev{id: "evt_" + id, at: created.Add(time.Minute), inquiry: id, created: created, status: status})
		all = append([]string{id}, all...)
	}
	start := base.Add(3 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name, query string
		want        []string
		wantPages   []int
	}{
		{"all newest first", "page[size]=3", all, []int{3, 3, 1}},
		{"start inclusive", "filter[created-at-start]=" + start,
			[]string{"inq_7", "inq_6", "inq_5", "inq_4", "inq_3"}, []int{5}},
		{"start one second later", "filter[created-at-start]=" + base.Add(3*time.Hour+time.Second).Format(time.RFC3339),
			[]string{"inq_7", "inq_6", "inq_5", "inq_4"}, []int{4}},
		{"start in another zone", "filter[created-at-start]=" + url.QueryEscape(base.Add(3*time.Hour).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)),
			[]string{"inq_7", "inq_6", "inq_5", "inq_4", "inq_3"}, []int{5}},
		{"start after all", "filter[created-at-start]=" + base.Add(8*time.Hour).Format(time.RFC3339), nil, []int{0}},
		{"status", "filter[status]=declined&page[size]=2",
			[]string{"inq_6", "inq_4", "inq_2"}, []int{2, 1}},
		{"status and start paged", "filter[status]=approved&filter[created-at-start]=" + start + "&page[size]=1",
			[]string{"inq_7", "inq_5", "inq_3"}, []int{1, 1, 1}},
		{"two statuses", "filter[status]=approved,declined&page[size]=7", all, []int{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := walk(t, srv, "/api/v1/inquiries?"+tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids: got %v, want %v", got, tt.want)
			}
			if !slices.Equal(pages, tt.wantPages) {
				t.Errorf("pages: got %v, want %v", pages, tt.wantPages)
			}
		})
	}

	t.Run("item is the payload object", func(t *testing.T) {
		_, _, b := get(t, srv, "/api/v1/inquiries?page[size]=1", nil)
		var p struct {
			Data []map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &p); err != nil || len(p.Data) != 1 {
			t.Fatalf("%v %s", err, b)
		}
		var attrs map[string]any
		if err := json.Unmarshal(p.Data[0]["attributes"], &attrs); err != nil {
			t.Fatal(err)
		}
		if got, want := attrs["created-at"], base.Add(7*time.Hour).Format(millis); got != want {
			t.Errorf("created-at: got %v, want %v", got, want)
		}
		if _, ok := attrs["fields"]; !ok {
			t.Errorf("attributes lack the payload's fields: %v", attrs)
		}
		if _, ok := p.Data[0]["relationships"]; !ok {
			t.Errorf("item lacks the payload's relationships")
		}
	})
}

// inquiryStatus returns GET /api/v1/inquiries/{id}'s status.
func inquiryStatus(tb testing.TB, srv *personatest.Server, id string) string {
	tb.Helper()
	status, _, b := get(tb, srv, "/api/v1/inquiries/"+id, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET inquiry %s: %d %s", id, status, b)
	}
	var doc struct {
		Data     resource          `json:"data"`
		Included []json.RawMessage `json:"included"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Data.ID != id || doc.Data.Type != "inquiry" || doc.Included == nil {
		tb.Fatalf("GET inquiry %s: %v %s", id, err, b)
	}
	return doc.Data.Attributes.Status
}

func TestInquiryFollowsLatestEventAndSetStatus(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	add(t, srv, ev{file: "inquiry-approved", id: "evt_2", at: base.Add(5 * time.Minute), inquiry: "inq_x"})
	add(t, srv, ev{file: "inquiry-created", id: "evt_1", at: base, inquiry: "inq_x"}) // older, arrives late
	if got, want := inquiryStatus(t, srv, "inq_x"), "approved"; got != want {
		t.Errorf("after a late older event: got %q, want %q", got, want)
	}
	add(t, srv, ev{file: "inquiry-declined", id: "evt_3", at: base.Add(10 * time.Minute), inquiry: "inq_x"})
	if got, want := inquiryStatus(t, srv, "inq_x"), "declined"; got != want {
		t.Errorf("after a newer event: got %q, want %q", got, want)
	}

	srv.SetStatus("inq_x", "needs_review")
	if got, want := inquiryStatus(t, srv, "inq_x"), "needs_review"; got != want {
		t.Errorf("after SetStatus: got %q, want %q", got, want)
	}
	if got, _ := walk(t, srv, "/api/v1/inquiries?filter[status]=needs_review"); !slices.Equal(got, []string{"inq_x"}) {
		t.Errorf("status filter sees the override: got %v", got)
	}
	if got, _ := walk(t, srv, "/api/v1/inquiries?filter[status]=declined"); len(got) != 0 {
		t.Errorf("status filter still sees the event's status: got %v", got)
	}
	_, _, b := get(t, srv, "/api/v1/inquiries", nil)
	var p listPage
	if err := json.Unmarshal(b, &p); err != nil || len(p.Data) != 1 || p.Data[0].Attributes.Status != "needs_review" {
		t.Errorf("list after SetStatus: %v %s", err, b)
	}
	if !strings.Contains(string(b), `"reference-id"`) {
		t.Errorf("override dropped the other attributes: %s", b)
	}
	add(t, srv, ev{file: "inquiry-approved", id: "evt_4", at: base.Add(20 * time.Minute), inquiry: "inq_x"})
	if got, want := inquiryStatus(t, srv, "inq_x"), "needs_review"; got != want {
		t.Errorf("override after a new event: got %q, want %q", got, want)
	}
	srv.SetStatus("inq_x", "")
	if got, want := inquiryStatus(t, srv, "inq_x"), "approved"; got != want {
		t.Errorf("after removing the override: got %q, want %q", got, want)
	}

	srv.SetStatus("inq_later", "expired")
	add(t, srv, ev{id: "evt_5", at: base, inquiry: "inq_later"})
	if got, want := inquiryStatus(t, srv, "inq_later"), "expired"; got != want {
		t.Errorf("override set before the inquiry arrived: got %q, want %q", got, want)
	}
}

func TestGetInquiryNotFound(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	if err := srv.AddWebhookBody(template(t, "case-created")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/inquiries/inq_nope", "/api/v1/inquiries/case_gqe7rH38FvxtzhGBQmDBsjkB"} {
		status, _, b := get(t, srv, path, nil)
		if status != http.StatusNotFound {
			t.Errorf("GET %s: got %d, want 404", path, status)
			continue
		}
		if got, want := errorTitle(t, b), "Record not found"; got != want {
			t.Errorf("GET %s title: got %q, want %q", path, got, want)
		}
	}
	// The case's event is stored under the case's id though.
	if got, _ := walk(t, srv, "/api/v1/events?filter[object-id]=case_gqe7rH38FvxtzhGBQmDBsjkB"); len(got) != 1 {
		t.Errorf("case events: got %v, want one", got)
	}
	if got, _ := walk(t, srv, "/api/v1/inquiries"); len(got) != 0 {
		t.Errorf("a case became an inquiry: %v", got)
	}
}

func TestAddEventErrors(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	add(t, srv, ev{id: "evt_taken", at: base, inquiry: "inq_a"})
	valid := func(edit func(data, obj map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(body(t, ev{id: "evt_new", at: base, inquiry: "inq_new"}), &doc); err != nil {
			t.Fatal(err)
		}
		data := doc["data"].(map[string]any)
		obj := data["attributes"].(map[string]any)["payload"].(map[string]any)["data"].(map[string]any)
		edit(data, obj)
		b, _ := json.Marshal(data)
		return b
	}
	tests := []struct {
		name string
		item []byte
	}{
		{"not JSON", []byte(`{"type":`)},
		{"array", []byte(`[]`)},
		{"not an event", valid(func(d, _ map[string]any) { d["type"] = "inquiry" })},
		{"no id", valid(func(d, _ map[string]any) { delete(d, "id") })},
		{"bad created-at", valid(func(d, _ map[string]any) { d["attributes"].(map[string]any)["created-at"] = "soon" })},
		{"no payload", valid(func(d, _ map[string]any) { delete(d["attributes"].(map[string]any), "payload") })},
		{"payload without id", valid(func(_, o map[string]any) { delete(o, "id") })},
		{"new inquiry without created-at", valid(func(_, o map[string]any) { delete(o["attributes"].(map[string]any), "created-at") })},
		{"bad inquiry created-at", valid(func(_, o map[string]any) { o["attributes"].(map[string]any)["created-at"] = "x" })},
		{"event id of another object", valid(func(d, _ map[string]any) { d["id"] = "evt_taken" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := srv.AddEvent(tt.item); err == nil {
				t.Fatal("AddEvent: got nil, want an error")
			}
			if err := srv.AddWebhookBody([]byte(`{"data":` + string(tt.item) + `}`)); err == nil {
				t.Error("AddWebhookBody: got nil, want an error")
			}
		})
	}
	if err := srv.AddWebhookBody([]byte(`{"event":{}}`)); err == nil {
		t.Error("AddWebhookBody without data: got nil, want an error")
	}
	if got, _ := walk(t, srv, "/api/v1/events?page[size]=100"); !slices.Equal(got, []string{"evt_taken"}) {
		t.Errorf("events after failed adds: got %v", got)
	}
	if got, _ := walk(t, srv, "/api/v1/inquiries"); !slices.Equal(got, []string{"inq_a"}) {
		t.Errorf("inquiries after failed adds: got %v", got)
	}
	if err := srv.AddEvent(valid(func(_, _ map[string]any) {})); err != nil {
		t.Errorf("AddEvent of a valid item: %v", err)
	}
	if got := inquiryStatus(t, srv, "inq_new"); got != "approved" {
		t.Errorf("AddEvent stored status %q, want approved", got)
	}
}

func TestAddSameEventTwice(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	add(t, srv, ev{id: "evt_1", at: base, inquiry: "inq_a", status: "pending"})
	add(t, srv, ev{id: "evt_1", at: base, inquiry: "inq_a", status: "approved"})
	if got, _ := walk(t, srv, "/api/v1/events?filter[object-id]=inq_a"); !slices.Equal(got, []string{"evt_1"}) {
		t.Errorf("events: got %v, want one", got)
	}
	if got, want := inquiryStatus(t, srv, "inq_a"), "approved"; got != want {
		t.Errorf("status: got %q, want %q", got, want)
	}
}

func TestRequestChecks(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	add(t, srv, ev{id: "evt_1", at: base, inquiry: "inq_a"})
	set := func(k, v string) func(*http.Request) {
		return func(r *http.Request) {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
	}
	method := func(m string) func(*http.Request) { return func(r *http.Request) { r.Method = m } }
	tests := []struct {
		name, target string
		edit         func(*http.Request)
		want         int
	}{
		{"ok events", "/api/v1/events?filter[object-id]=inq_a", nil, 200},
		{"ok inquiries", "/api/v1/inquiries", nil, 200},
		{"ok inquiry", "/api/v1/inquiries/inq_a", nil, 200},
		{"no key", "/api/v1/inquiries", set("Authorization", ""), 401},
		{"wrong key", "/api/v1/inquiries", set("Authorization", "Bearer persona_sandbox_OTHER"), 401},
		{"not bearer", "/api/v1/inquiries", set("Authorization", "Token "+testKey), 401},
		{"no version", "/api/v1/inquiries", set("Persona-Version", ""), 400},
		{"other version", "/api/v1/inquiries", set("Persona-Version", "2023-01-05"), 400},
		{"no inflection", "/api/v1/inquiries", set("Key-Inflection", ""), 400},
		{"snake", "/api/v1/inquiries", set("Key-Inflection", "snake"), 400},
		{"camel", "/api/v1/events", set("Key-Inflection", "camel"), 400},
		{"unknown path", "/api/v1/accounts", nil, 404},
		{"no version prefix", "/inquiries", nil, 404},
		{"trailing slash", "/api/v1/events/", nil, 404},
		{"empty id", "/api/v1/inquiries/", nil, 404},
		{"nested path", "/api/v1/inquiries/inq_a/extra", nil, 404},
		{"POST", "/api/v1/events", method(http.MethodPost), 405},
		{"DELETE", "/api/v1/inquiries/inq_a", method(http.MethodDelete), 405},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, b := get(t, srv, tt.target, tt.edit)
			if status != tt.want {
				t.Errorf("status: got %d, want %d: %s", status, tt.want, b)
			}
			id := h.Get("Request-Id")
			if !strings.HasPrefix(id, "req_") || seen[id] {
				t.Errorf("Request-Id %q: want a fresh req_ id", id)
			}
			seen[id] = true
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type: got %q", ct)
			}
			if status != http.StatusOK {
				errorTitle(t, b)
			}
			if strings.Contains(string(b), "persona_sandbox_") {
				t.Errorf("answer echoes a key: %s", b)
			}
		})
	}
}

func TestRequestCounts(t *testing.T) {
	srv := newServer(t, personatest.Options{})
	add(t, srv, ev{id: "evt_1", at: base, inquiry: "inq_a"})
	get(t, srv, "/api/v1/inquiries", nil)
	get(t, srv, "/api/v1/inquiries?page[size]=5", nil)
	get(t, srv, "/api/v1/inquiries/inq_a", nil)
	get(t, srv, "/api/v1/inquiries/inq_b", nil)
	get(t, srv, "/api/v1/inquiries/inq_a", func(r *http.Request) { r.Header.Del("Authorization") })
	get(t, srv, "/api/v1/events?filter[object-id]=inq_a", nil)
	tests := []struct {
		name      string
		got, want int
	}{
		{"Requests", srv.Requests(), 6},
		{"RequestsTo inquiries", srv.RequestsTo("/api/v1/inquiries"), 2},
		{"RequestsTo inq_a", srv.RequestsTo("/api/v1/inquiries/inq_a"), 2},
		{"RequestsTo events", srv.RequestsTo("/api/v1/events"), 1},
		{"RequestsTo other", srv.RequestsTo("/api/v1/other"), 0},
		{"RequestsWithPrefix inquiry lookups", srv.RequestsWithPrefix("/api/v1/inquiries/"), 3},
		{"RequestsWithPrefix inquiries", srv.RequestsWithPrefix("/api/v1/inquiries"), 5},
		{"RequestsWithPrefix all", srv.RequestsWithPrefix("/"), 6},
		{"ArrivalTimes", len(srv.ArrivalTimes()), 6},
		{"RateLimited", srv.RateLimited(), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	clk := newClock()
	srv := newServer(t, personatest.Options{RatePerMinute: 3, Now: clk.Now})
	steps := []struct {
		at         time.Duration
		want       int
		retryAfter string // "" when none
		remaining  string
		reset      string
	}{
		{0, 200, "", "2", "60"},
		{10 * time.Second, 200, "", "1", "50"},
		{20 * time.Second, 200, "", "0", "40"},
		{30 * time.Second, 429, "30", "0", "30"},
		{30*time.Second + 500*time.Millisecond, 429, "30", "0", "30"}, // 29.5s rounded up                    // the 4th within 60s
		{59*time.Second + 500*time.Millisecond, 429, "1", "0", "1"},   // rounded up, at least 1
		{60 * time.Second, 200, "", "0", "10"},                        // the one at 0 left; the 429s used no budget
		{65 * time.Second, 429, "5", "0", "5"},                        // now the one at 10s is oldest
		{70 * time.Second, 200, "", "0", "10"},
		{130 * time.Second, 200, "", "2", "60"}, // all of 20s, 60s, 70s have left
	}
	for _, st := range steps {
		clk.Set(base.Add(st.at))
		status, h, b := get(t, srv, "/api/v1/inquiries", nil)
		if status != st.want {
			t.Errorf("at %v: status %d, want %d: %s", st.at, status, st.want, b)
		}
		for _, hv := range []struct{ name, want string }{
			{"Retry-After", st.retryAfter},
			{"RateLimit-Limit", "3"},
			{"RateLimit-Remaining", st.remaining},
			{"RateLimit-Reset", st.reset},
		} {
			if got := h.Get(hv.name); got != hv.want {
				t.Errorf("at %v: %s %q, want %q", st.at, hv.name, got, hv.want)
			}
		}
		if status == http.StatusTooManyRequests {
			errorTitle(t, b)
		}
	}
	if got, want := srv.RateLimited(), 4; got != want {
		t.Errorf("RateLimited: got %d, want %d", got, want)
	}
	if got, want := srv.Requests(), len(steps); got != want {
		t.Errorf("Requests: got %d, want %d", got, want)
	}
	if got, want := srv.MaxInWindow(time.Minute), 3; got != want {
		t.Errorf("MaxInWindow(1m): got %d, want %d", got, want)
	}
	if got, want := srv.MaxInWindow(time.Hour), 6; got != want {
		t.Errorf("MaxInWindow(1h) counts only accepted: got %d, want %d", got, want)
	}
	arrivals := srv.ArrivalTimes()
	if len(arrivals) != len(steps) {
		t.Fatalf("ArrivalTimes: got %d, want %d", len(arrivals), len(steps))
	}
	for i, st := range steps {
		if got, want := arrivals[i], base.Add(st.at); !got.Equal(want) {
			t.Errorf("arrival %d: got %v, want %v", i, got, want)
		}
	}
}

func TestInjectedFaults(t *testing.T) {
	tests := []struct {
		name       string
		burst, bad int
		want       []int
	}{
		{"both", 3, 4, []int{200, 200, 429, 500, 200, 429, 200, 500, 429, 200, 200, 429}},
		{"500 only", 0, 2, []int{200, 500, 200, 500, 200}},
		{"429 only", 1, 0, []int{429, 429, 429}},
		{"none", 0, 0, []int{200, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, personatest.Options{Burst429Every: tt.burst, Fail500Every: tt.bad})
			var got []int
			for range tt.want {
				status, h, b := get(t, srv, "/api/v1/inquiries", nil)
				got = append(got, status)
				if status != http.StatusOK {
					errorTitle(t, b)
				}
				if ra := h.Get("Retry-After"); (status == 429) != (ra == "1") {
					t.Errorf("status %d with Retry-After %q", status, ra)
				}
				if h.Get("Request-Id") == "" {
					t.Errorf("status %d without Request-Id", status)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("statuses:\ngot  %v\nwant %v", got, tt.want)
			}
			if got := srv.RateLimited(); got != 0 {
				t.Errorf("RateLimited counts bursts: %d", got)
			}
			if got, want := srv.MaxInWindow(time.Hour), len(tt.want); got != want {
				t.Errorf("MaxInWindow counts injected answers as accepted: got %d, want %d", got, want)
			}
		})
	}
}

func TestMaxInWindow(t *testing.T) {
	clk := newClock()
	srv := newServer(t, personatest.Options{Now: clk.Now})
	// Sent out of clock order (fine without a rate limit), so MaxInWindow
	// cannot rely on arrival order.
	for _, s := range []int{30, 0, 61, 2, 59, 1, 60} {
		clk.Set(base.Add(time.Duration(s) * time.Second))
		get(t, srv, "/api/v1/inquiries", nil)
	}
	tests := []struct {
		w    time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Millisecond, 1},
		{time.Second, 1}, // [t, t+1s) never holds two of them
		{2 * time.Second, 2},
		{3 * time.Second, 3},
		{60 * time.Second, 5},
		{61 * time.Second, 6},
		{62 * time.Second, 7},
		{time.Hour, 7},
	}
	for _, tt := range tests {
		t.Run(tt.w.String(), func(t *testing.T) {
			if got := srv.MaxInWindow(tt.w); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, personatest.Options{RatePerMinute: 100000})
	const workers, each = 8, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			inq := fmt.Sprintf("inq_w%d", w)
			for i := range each {
				add(t, srv, ev{id: fmt.Sprintf("evt_w%d_%03d", w, i), at: base.Add(time.Duration(i) * time.Second), inquiry: inq})
				get(t, srv, "/api/v1/events?filter[object-id]="+inq, nil)
				get(t, srv, "/api/v1/inquiries?page[size]=100", nil)
				get(t, srv, "/api/v1/inquiries/"+inq, nil)
				srv.SetStatus(inq, "approved")
				_ = srv.MaxInWindow(time.Second) + srv.RateLimited() + srv.RequestsWithPrefix("/api") + len(srv.ArrivalTimes())
			}
		})
	}
	wg.Wait()
	if got, want := srv.Requests(), workers*each*3; got != want {
		t.Errorf("Requests: got %d, want %d", got, want)
	}
	for w := range workers {
		got, _ := walk(t, srv, fmt.Sprintf("/api/v1/events?filter[object-id]=inq_w%d&page[size]=100", w))
		if len(got) != each {
			t.Errorf("worker %d: %d events, want %d", w, len(got), each)
		}
	}
	if got, _ := walk(t, srv, "/api/v1/inquiries?page[size]=3"); len(got) != workers {
		t.Errorf("inquiries: got %d, want %d", len(got), workers)
	}
}

func TestNewPanicsWithoutKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New without APIKey did not panic")
		}
	}()
	personatest.New(personatest.Options{})
}

func TestTestdataBodiesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "persona", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	// One server per body: the examples reuse event ids across objects.
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var hook struct {
				Data resource `json:"data"`
			}
			if err := json.Unmarshal(b, &hook); err != nil {
				t.Fatal(err)
			}
			srv := newServer(t, personatest.Options{})
			if err := srv.AddWebhookBody(b); err != nil {
				t.Fatal(err)
			}
			_, _, list := get(t, srv, "/api/v1/events", nil)
			if !strings.Contains(string(list), hook.Data.ID) {
				t.Errorf("event %s not listed: %s", hook.Data.ID, list)
			}
		})
	}
}

func TestCheckOrder(t *testing.T) {
	noKey := func(r *http.Request) { r.Header.Del("Authorization") }
	tests := []struct {
		name   string
		opts   personatest.Options
		target string
		edit   func(*http.Request)
		want   []int // answers to the same request sent len(want) times
	}{
		{"rate limit before key", personatest.Options{RatePerMinute: 1}, "/api/v1/events", noKey, []int{401, 429}},
		{"burst before headers", personatest.Options{Burst429Every: 1}, "/api/v1/events",
			func(r *http.Request) { r.Header.Del("Persona-Version") }, []int{429}},
		{"500 before path", personatest.Options{Fail500Every: 1}, "/api/v1/nope", nil, []int{500}},
		{"key before headers", personatest.Options{}, "/api/v1/events",
			func(r *http.Request) { noKey(r); r.Header.Del("Key-Inflection") }, []int{401}},
		{"headers before path", personatest.Options{}, "/api/v1/nope",
			func(r *http.Request) { r.Header.Set("Persona-Version", "2020-01-01") }, []int{400}},
		{"path before method", personatest.Options{}, "/api/v1/nope",
			func(r *http.Request) { r.Method = http.MethodPost }, []int{404}},
		{"method before query", personatest.Options{}, "/api/v1/events?page[size]=0",
			func(r *http.Request) { r.Method = http.MethodPut }, []int{405}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.opts.Now = clk.Now
			srv := newServer(t, tt.opts)
			var got []int
			for range tt.want {
				status, _, _ := get(t, srv, tt.target, tt.edit)
				got = append(got, status)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
