package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/server"
)

// TestListByReference: GET /v1/inquiries?reference_id= lists one user's
// inquiries newest created first, page by page, with the other filters;
// an empty or repeated user id is a 400, never every user's inquiries.
func TestListByReference(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, d := range []struct {
		event, inquiry, reference, account string
		status                             engine.Status
		created, at                        time.Time
	}{
		{"evt_1", "inq_first", "user-1", "act_1", engine.StatusCreated, t0, t0},
		{"evt_2", "inq_other", "user-2", "act_2", engine.StatusCreated, t0.Add(time.Minute), t0.Add(time.Minute)},
		{"evt_3", "inq_second", "user-1", "act_1", engine.StatusCreated, t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
		{"evt_4", "inq_third", "user-1", "act_1", engine.StatusCreated, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		// The first inquiry is decided last: still the oldest of the user.
		{"evt_5", "inq_first", "user-1", "act_1", engine.StatusDeclined, t0, t0.Add(time.Hour)},
	} {
		body := storetest.UserBody(d.event, "inquiry."+string(d.status), d.inquiry, d.reference, d.account, d.status, d.created, d.at)
		if code, v := f.post(t, body, nil); code != http.StatusOK {
			t.Fatalf("delivery of %s: %d %v", d.event, code, v)
		}
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"reference_id=user-1", []string{"inq_third", "inq_second", "inq_first"}},
		{"reference_id=user-1&limit=1", []string{"inq_third", "inq_second", "inq_first"}},
		{"reference_id=user-1&status=declined", []string{"inq_first"}},
		{"reference_id=user-1&decision=declined&redacted=false&limit=1", []string{"inq_first"}},
		{"reference_id=user-1&account_id=act_2", nil},
		{"account_id=act_2&template_id=itmpl_lookup", []string{"inq_other"}},
		{"reference_id=" + url.QueryEscape("user 1/ü"), nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			next := ""
			for page := 0; page < 10; page++ {
				path := "/v1/inquiries?" + tc.query
				if next != "" {
					path += "&cursor=" + url.QueryEscape(next)
				}
				code, v := f.get(t, path)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d %v", path, code, v)
				}
				for _, inq := range v["inquiries"].([]any) {
					got = append(got, inq.(map[string]any)["id"].(string))
				}
				if v["next_cursor"] == nil {
					break
				}
				next = v["next_cursor"].(string)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
		})
	}

	_, v := f.get(t, "/v1/inquiries?limit=1")
	byUpdated, _ := v["next_cursor"].(string)
	for _, tc := range []struct{ query, mention string }{
		{"reference_id=", "reference_id"},
		{"account_id=", "account_id"},
		{"template_id=", "template_id"},
		{"reference_id=user-1&reference_id=user-2", "reference_id"},
		{"referenceid=user-1", "reference_id"},
		{"reference_id=user-1&cursor=" + url.QueryEscape(byUpdated), "order"},
	} {
		code, v := f.get(t, "/v1/inquiries?"+tc.query)
		msg, _ := v["error"].(map[string]any)["message"].(string)
		if code != http.StatusBadRequest || errCode(v) != server.CodeInvalidRequest || !strings.Contains(msg, tc.mention) {
			t.Errorf("GET /v1/inquiries?%s: %d %v; want a 400 that mentions %q", tc.query, code, v, tc.mention)
		}
	}
}

// TestNoStore: every response of the query API, answers and errors
// alike, says Cache-Control: no-store.
func TestNoStore(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		f := newFixture(t, token, nil)
		if code, v := f.post(t, event("evt_1", engine.EventApproved, "inq_1", engine.StatusApproved, t0), nil); code != http.StatusOK {
			t.Fatalf("delivery: %d %v", code, v)
		}
		for _, tc := range []struct {
			method, path string
			auth         bool
			code         int
		}{
			{"GET", "/v1/inquiries/inq_1", true, 200},
			{"HEAD", "/v1/inquiries/inq_1", true, 200},
			{"GET", "/v1/inquiries?reference_id=user-1", true, 200},
			{"GET", "/v1/inquiries", true, 200},
			{"GET", "/v1/inquiries/inq_1/events", true, 200},
			{"GET", "/v1/inquiries/inq_1/decision", true, 200},
			{"GET", "/v1/changes", true, 200},
			{"GET", "/v1/audit/head", true, 404},
			{"GET", "/v1/inquiries/inq_none", true, 404},
			{"GET", "/v1/inquiries?staus=approved", true, 400},
			{"GET", "/v1/nowhere", true, 404},
			{"POST", "/v1/inquiries", true, 405},
			{"GET", "/healthz", false, 200},
			{"GET", "/metrics", true, 200},
			{"GET", "/v1/inquiries/inq_1", false, 401},
		} {
			if tc.code == 401 && token == "" {
				continue
			}
			req, _ := http.NewRequest(tc.method, f.api.URL+tc.path, nil)
			if tc.auth && token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("token %q: %s %s: %d, Cache-Control %q; want %d, no-store", token, tc.method, tc.path,
					resp.StatusCode, resp.Header.Get("Cache-Control"), tc.code)
			}
		}
	}
}
