package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

func TestReconcileRoute(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	report := reconcile.Report{StartedAt: at, FinishedAt: at.Add(4200 * time.Millisecond), Checked: 2, Recovered: 1,
		RecoveredEvents: []reconcile.RecoveredEvent{{EventID: "evt_1", Name: "inquiry.approved", InquiryID: "inq_1"}},
		Drifts:          []reconcile.Drift{{InquiryID: "inq_2", Status: engine.StatusCompleted, PersonaStatus: engine.StatusApproved, CheckedAt: at}}}
	many := `{"inquiry_ids":[` + strings.Repeat(`"inq_x",`, server.MaxReconcileInquiries) + `"inq_y"]}`
	for _, tc := range []struct {
		name       string
		method     string
		body       string
		token      string
		runErr     error
		unset      bool // no Reconcile configured
		wantStatus int
		wantCode   string
		wantOpts   *reconcile.Options
	}{
		{name: "no body", body: "", wantStatus: 200, wantOpts: &reconcile.Options{}},
		{name: "named", body: `{"inquiry_ids":["inq_1","inq_2"],"only_named":true}`, wantStatus: 200,
			wantOpts: &reconcile.Options{Inquiries: []string{"inq_1", "inq_2"}, OnlyNamed: true}},
		{name: "unknown field", body: `{"inquiries":["inq_1"]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "not JSON", body: `inq_1`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "two values", body: `{} {}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "only named without ids", body: `{"only_named":true}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "empty id", body: `{"inquiry_ids":[""]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "too many ids", body: many, wantStatus: 400, wantCode: "invalid_request"},
		{name: "too large", body: `{"inquiry_ids":["` + strings.Repeat("x", 70<<10) + `"]}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "wrong token", token: "nope", wantStatus: 401, wantCode: "unauthorized"},
		{name: "not configured", unset: true, wantStatus: 404, wantCode: "not_configured"},
		{name: "run failed", runErr: errors.New("persona: GET /api/v1/events: 401 Unauthorized"), wantStatus: 502, wantCode: "reconcile_failed"},
		{name: "busy", runErr: reconcile.ErrBusy, wantStatus: 503, wantCode: "unavailable"},
		{name: "GET", method: http.MethodGet, wantStatus: 405, wantCode: "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *reconcile.Options
			cfg := server.APIConfig{Engine: engine.New(engine.NewMemoryStore(), engine.Policy{}), Token: "tok"}
			if !tc.unset {
				cfg.Reconcile = func(_ context.Context, opts reconcile.Options) (reconcile.Report, error) {
					got = &opts
					return report, tc.runErr
				}
			}
			srv := httptest.NewServer(openapitest.Handler(t, server.NewAPIHandler(cfg)))
			defer srv.Close()
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, srv.URL+"/v1/reconcile", strings.NewReader(tc.body))
			token := tc.token
			if token == "" {
				token = "tok"
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			if tc.wantCode != "" {
				var e struct{ Error struct{ Code string } }
				if json.Unmarshal(raw, &e); e.Error.Code != tc.wantCode {
					t.Errorf("error code %q, want %q: %s", e.Error.Code, tc.wantCode, raw)
				}
			}
			if tc.wantOpts != nil && !reflect.DeepEqual(got, tc.wantOpts) {
				t.Errorf("run with %+v, want %+v", got, tc.wantOpts)
			}
			if tc.wantStatus >= 400 && tc.wantStatus != 502 && tc.wantStatus != 503 && got != nil {
				t.Errorf("a refused request ran a reconciliation with %+v", got)
			}
			if tc.wantStatus == 200 {
				want := `{"started_at":"2026-12-02T10:00:00.000Z","finished_at":"2026-12-02T10:00:04.200Z","inquiries_checked":2,"events_recovered":1,` +
					`"recovered":[{"event_id":"evt_1","name":"inquiry.approved","inquiry_id":"inq_1"}],` +
					`"drifts":[{"inquiry_id":"inq_2","status":"completed","persona_status":"approved","checked_at":"2026-12-02T10:00:00.000Z"}],` +
					`"beyond_repair":[],"errors":[]}`
				if strings.TrimSpace(string(raw)) != want {
					t.Errorf("report\n got %s\nwant %s", raw, want)
				}
			}
		})
	}
}
