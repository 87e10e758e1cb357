package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestSendExamples: every built-in example is accepted by the real daemon
// and stored as an event, not a dead letter, with no file of the
// repository.
func TestSendExamples(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	t.Setenv("E2E_SECRET", testSecret)
	code, out, errOut := runCLI(t, "send", "-list-examples")
	names := strings.Fields(out)
	if code != 0 || len(names) < 15 {
		t.Fatalf("send -list-examples: exit %d %q %s", code, out, errOut)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "send", "-url", "http://"+d.WebhookAddr()+"/webhooks/persona", "-secret-env", "E2E_SECRET", "-example", name)
			if code != 0 || strings.Count(out, "200 OK") != 1 || !strings.HasPrefix(out, name+" evt_") {
				t.Errorf("send -example %s: exit %d %s%s", name, code, out, errOut)
			}
		})
	}
	st := d.stats()
	if st.DeadLetters != 0 || st.Events != int64(len(names)) {
		t.Errorf("after %d examples: %d events, %d dead letters; want every one an event", len(names), st.Events, st.DeadLetters)
	}
	if code, _, errOut := runCLI(t, "send", "-example", "inquiry.nope"); code != 2 && code != 1 || !strings.Contains(errOut, "-list-examples") {
		t.Errorf("an unknown example: exit %d %s", code, errOut)
	}
}

// TestSendInquiryHistory: send -inquiry posts a whole history for the
// inquiry named, which a decision long poll started before it sees end in
// the example's decision.
func TestSendInquiryHistory(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	t.Setenv("E2E_SECRET", testSecret)
	tests := []struct {
		example, inquiry, status, decision string
	}{
		{"", "inq_devloop_approved", "approved", "approved"},
		{"inquiry.declined", "inq_devloop_declined", "declined", "declined"},
		{"inquiry.marked-for-review", "inq_devloop_review", "needs_review", "needs_review"},
		{"inquiry.redacted", "inq_devloop_redacted", "approved", "approved"},
	}
	for _, tt := range tests {
		t.Run(tt.inquiry, func(t *testing.T) {
			polled := make(chan response, 1)
			go func() { // d.get would call t.Fatal off the test's goroutine
				var r response
				defer func() { polled <- r }()
				req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+"/v1/inquiries/"+tt.inquiry+"/decision?wait=30s", nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := validated(t).Do(req)
				if err != nil {
					r.raw = err.Error()
					return
				}
				defer resp.Body.Close()
				r.code = resp.StatusCode
				json.NewDecoder(resp.Body).Decode(&r.body)
			}()
			args := []string{"send", "-url", "http://" + d.WebhookAddr() + "/webhooks/persona", "-secret-env", "E2E_SECRET",
				"-inquiry", tt.inquiry, "-reference-id", "user-42", "-interval", "10ms"}
			if tt.example != "" {
				args = append(args, "-example", tt.example)
			}
			code, out, errOut := runCLI(t, args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) < 4 || !strings.HasPrefix(lines[0], "inquiry.created evt_") || strings.Count(out, "200 OK") != len(lines) {
				t.Fatalf("send -inquiry: exit %d\n%s%s", code, out, errOut)
			}
			if p := <-polled; p.code != http.StatusOK || p.body["decision"] != tt.decision {
				t.Errorf("the long poll: %d %s, want decision %s", p.code, p.raw, tt.decision)
			}
			inq := d.get("/v1/inquiries/" + tt.inquiry)
			inquiryEvents := 0
			for _, l := range lines {
				if strings.HasPrefix(l, "inquiry.") {
					inquiryEvents++
				}
			}
			if inq.body["status"] != tt.status || inq.body["decision"] != tt.decision || inq.body["reference_id"] != "user-42" ||
				inq.body["event_count"] != float64(inquiryEvents) || len(inq.body["anomalies"].([]any)) != 0 {
				t.Errorf("the inquiry after %d inquiry events: %s", inquiryEvents, inq.raw)
			}
			if want := tt.example == "inquiry.redacted"; inq.body["redacted"] != want {
				t.Errorf("redacted: got %v, want %v", inq.body["redacted"], want)
			}
			hist := d.get("/v1/inquiries/" + tt.inquiry + "/events")
			for i, e := range hist.body["events"].([]any) {
				if o := e.(map[string]any)["outcome"]; o != "applied" && o != "unchanged" {
					t.Errorf("event %s: outcome %v; a realistic history applies in order", strconv.Itoa(i), o)
				}
			}
		})
	}
}
