package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/store"
)

// writeBeforeNotify writes a database at the schema version before
// notify_endpoints, with changes changes in its feed.
func writeBeforeNotify(tb testing.TB, path string, changes int) {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(names)
	raw := rawDB(tb, path, "_pragma=journal_mode(WAL)")
	for _, name := range names {
		n, _, _ := strings.Cut(filepath.Base(name), "_")
		if v, _ := strconv.Atoi(n); v >= store.SchemaNotify {
			continue
		}
		script, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		mustExec(tb, raw, string(script))
	}
	mustExec(tb, raw, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = 1885696627", store.SchemaNotify-1)) // "pers"
	for i := range changes {
		mustExec(tb, raw, fmt.Sprintf(`INSERT INTO changes (inquiry_id, event_id, from_status, to_status, decision, redacted, at)
			VALUES ('inq_%d', 'evt_%d', NULL, 'created', NULL, 0, 1710527400000)`, i, i))
	}
	raw.Close()
}

// TestMigrateAddsNotifyEndpoints opens a file of the version before and
// registers endpoints on it: a new one starts at the feed's head (or at
// its start), and its state survives a reopen.
func TestMigrateAddsNotifyEndpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	writeBeforeNotify(t, path, 3)
	db := openPath(t, path, store.Options{})
	ctx := context.Background()
	now := time.Date(2024, 3, 16, 9, 0, 0, 0, time.UTC)
	if head, err := db.ChangesHead(ctx); err != nil || head != 3 {
		t.Fatalf("ChangesHead = %d, %v; want 3", head, err)
	}
	for _, tc := range []struct {
		url       string
		fromStart bool
		want      int64
	}{{"https://a.example/", false, 3}, {"https://b.example/", true, 0}} {
		ep, err := db.RegisterNotifyEndpoint(ctx, tc.url, tc.fromStart, now)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Cursor != tc.want || !ep.AddedAt.Equal(now) || ep.Parked() {
			t.Errorf("registered %s: %+v, want cursor %d", tc.url, ep, tc.want)
		}
	}
	if err := db.AdvanceNotifyCursor(ctx, "https://b.example/", 2, now); err != nil {
		t.Fatal(err)
	}
	if err := db.AdvanceNotifyCursor(ctx, "https://b.example/", 1, now); err != nil { // never back
		t.Fatal(err)
	}
	if err := db.NotifyFailing(ctx, "https://b.example/", now, "answered 500"); err != nil {
		t.Fatal(err)
	}
	if err := db.ParkNotifyEndpoint(ctx, "https://b.example/", 2, now.Add(time.Hour), "gave up"); err != nil {
		t.Fatal(err)
	}
	// Registering again keeps the state.
	ep, err := db.RegisterNotifyEndpoint(ctx, "https://b.example/", true, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Cursor != 2 || !ep.FailingSince.Equal(now) || ep.LastError != "answered 500" || !ep.ParkedAt.Equal(now.Add(time.Hour)) ||
		ep.ParkedReason != "gave up" || !ep.AddedAt.Equal(now) {
		t.Errorf("endpoint after advance, failure and park: %+v", ep)
	}
	// A resume, from a connection of its own while the writer is open.
	ep, err = store.ResumeNotifyEndpoint(ctx, path, "https://b.example/")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Parked() || !ep.FailingSince.IsZero() || ep.LastError != "" || ep.Cursor != 2 {
		t.Errorf("endpoint after resume: %+v", ep)
	}
	eps, err := db.NotifyEndpoints(ctx)
	if err != nil || len(eps) != 2 || eps[0].URL != "https://a.example/" {
		t.Errorf("NotifyEndpoints = %+v, %v", eps, err)
	}
}
