package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
)

// TestLookupByReference drives find-by-user against the real daemon:
// GET /v1/inquiries?reference_id= pages through one user's inquiries
// newest created first, each page Cache-Control: no-store; an inquiry
// whose reference-id an account redaction forgot is found by it no more;
// personad inquiry -reference-id lists the same from the file while
// serve runs, and after it stopped.
func TestLookupByReference(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	const user = "user-e2e-42"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	var want []string // newest created first
	for i := range 5 {
		id := fmt.Sprintf("inq_e2e%d", i)
		account := "act_keep"
		if i == 2 {
			account = "act_gone"
		}
		created := t0.Add(time.Duration(i) * time.Hour)
		for j, st := range []engine.Status{engine.StatusCreated, engine.StatusCompleted, engine.StatusApproved} {
			// The oldest inquiry changes last: a listing newest updated
			// first would put it first.
			at := created.Add(time.Duration(j) * time.Minute)
			if i == 0 {
				at = at.Add(24 * time.Hour)
			}
			body := storetest.UserBody(fmt.Sprintf("evt_e2e%d_%d", i, j), "inquiry."+string(st), id, user, account, st, created, at)
			if r := d.post(body, nil); r.code != http.StatusOK {
				t.Fatalf("delivery: %d %s", r.code, r.raw)
			}
		}
		if i != 2 {
			want = append([]string{id}, want...)
		}
	}
	other := storetest.UserBody("evt_e2e_other", engine.EventCreated, "inq_e2e_other", "user-other", "act_keep", engine.StatusCreated, t0, t0)
	if r := d.post(other, nil); r.code != http.StatusOK {
		t.Fatalf("delivery: %d %s", r.code, r.raw)
	}
	if r := d.post(storetest.AccountRedactedBody("evt_e2e_gone", "act_gone", t0.Add(48*time.Hour)), nil); r.code != http.StatusOK {
		t.Fatalf("account redaction: %d %s", r.code, r.raw)
	}

	var got []string
	path := "/v1/inquiries?reference_id=" + url.QueryEscape(user) + "&limit=2"
	for page := 0; page < 10; page++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s: %d, Cache-Control %q: %s", path, resp.StatusCode, resp.Header.Get("Cache-Control"), raw)
		}
		var v struct {
			Inquiries []struct {
				ID string `json:"id"`
			}
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Inquiries) > 2 {
			t.Fatalf("page of %d, limit 2", len(v.Inquiries))
		}
		for _, inq := range v.Inquiries {
			got = append(got, inq.ID)
		}
		if v.NextCursor == nil {
			break
		}
		path = "/v1/inquiries?reference_id=" + url.QueryEscape(user) + "&limit=2&cursor=" + url.QueryEscape(*v.NextCursor)
	}
	if !slices.Equal(got, want) {
		t.Errorf("API pages: %v, want %v (newest created first, the forgotten reference left out)", got, want)
	}
	newest := d.get("/v1/inquiries?reference_id=" + url.QueryEscape(user) + "&limit=1")
	if inqs, _ := newest.body["inquiries"].([]any); len(inqs) != 1 || inqs[0].(map[string]any)["decision"] != "approved" {
		t.Errorf("the user's newest inquiry: %s; want %s, approved", newest.raw, want[0])
	}

	cli := func(args ...string) []string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"inquiry", "-db", d.dbPath}, args...)...)
		var v struct{ Inquiries []struct{ ID string } }
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("personad inquiry %v: exit %d %s %s", args, code, out, errOut)
		}
		var ids []string
		for _, inq := range v.Inquiries {
			ids = append(ids, inq.ID)
		}
		return ids
	}
	if got := cli("-reference-id", user); !slices.Equal(got, want) {
		t.Errorf("personad inquiry -reference-id while serving: %v, want %v", got, want)
	}
	d.stop()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-reference-id", user}, want},
		{[]string{"-reference-id", user, "-limit", "1"}, want[:1]},
		{[]string{"-account-id", "act_gone"}, []string{"inq_e2e2"}},
		{[]string{"-account-id", "act_keep", "-template-id", "itmpl_lookup", "-limit", "2"}, []string{"inq_e2e4", "inq_e2e3"}},
		{[]string{"-reference-id", "user-nobody"}, nil},
	} {
		if got := cli(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("personad inquiry %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	for _, args := range [][]string{
		{"-reference-id", ""},
		{"-reference-id", user, "inq_e2e1"},
		{"-account-id", "act_keep", "-reference-id", ""},
		{"-limit", "1", "inq_e2e1"},
		{"-reference-id", user, "-limit", "-1"},
	} {
		code, _, errOut := runCLI(t, append([]string{"inquiry", "-db", d.dbPath}, args...)...)
		if code != 2 || !strings.Contains(errOut, "Try:") {
			t.Errorf("personad inquiry %v: exit %d %q, want 2 with a hint", args, code, errOut)
		}
	}
}
