package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// TestWebhookConflictingRedelivery: a stored event id with another body
// is answered 200 duplicate, warned about with the body's SHA-256 (and
// never its contents), counted in personad_conflicting_redeliveries_total
// at every delivery, and shown in the inquiry's anomalies; the first body
// stays the one folded.
func TestWebhookConflictingRedelivery(t *testing.T) {
	var logs bytes.Buffer
	metrics := server.NewMetrics()
	f := newFixture(t, "", func(c *server.WebhookConfig) {
		c.Metrics = metrics
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	first := event("evt_cf", engine.EventStarted, "inq_cf", engine.StatusPending, at)
	other := event("evt_cf", engine.EventDeclined, "inq_cf", engine.StatusDeclined, at)
	for i, tt := range []struct {
		body      []byte
		duplicate bool
	}{{first, false}, {other, true}, {other, true}} {
		code, body := f.post(t, tt.body, nil)
		if code != http.StatusOK || body["duplicate"] != tt.duplicate || body["event_id"] != "evt_cf" || body["outcome"] != "applied" {
			t.Errorf("delivery %d: %d %v; want 200, duplicate %v, the first outcome", i, code, body, tt.duplicate)
		}
	}
	sum := sha256.Sum256(other)
	if got := strings.Count(logs.String(), hex.EncodeToString(sum[:])); got != 2 {
		t.Errorf("the conflicting body's SHA-256 is logged %d times, want 2:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"event redelivered with another body`) {
		t.Errorf("no warning for the conflict:\n%s", logs.String())
	}
	if got := scrape(t, metrics, "personad_conflicting_redeliveries_total"); got != "2" {
		t.Errorf("personad_conflicting_redeliveries_total = %s, want 2", got)
	}
	if got := scrape(t, metrics, "personad_duplicate_deliveries_total"); got != "2" {
		t.Errorf("personad_duplicate_deliveries_total = %s, want 2", got)
	}
	if got := scrape(t, metrics, `personad_anomalies_total{kind="conflicting_redelivery"}`); got != "1" {
		t.Errorf("personad_anomalies_total{kind=conflicting_redelivery} = %s, want 1 (the second conflicting delivery adds none)", got)
	}
	code, inq := f.get(t, "/v1/inquiries/inq_cf")
	anomalies, _ := inq["anomalies"].([]any)
	if code != http.StatusOK || inq["status"] != "pending" || len(anomalies) != 1 {
		t.Fatalf("inquiry: %d %v; want pending with one anomaly", code, inq)
	}
	if a := anomalies[0].(map[string]any); a["kind"] != "conflicting_redelivery" || a["event_id"] != "evt_cf" {
		t.Errorf("anomaly = %v, want conflicting_redelivery of evt_cf", a)
	}
	if got := len(f.store.Conflicts()); got != 1 {
		t.Errorf("%d conflicts kept, want 1 (the body once)", got)
	}
}

// scrape returns the value of an unlabelled metric as /metrics shows it.
func scrape(t *testing.T, m *server.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s not in /metrics", name)
	return ""
}
