package store_test

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// TestMigrateEventSource opens a file of the version before the events'
// source holding an inquiry's events: after the migration they read back
// as received by webhook, the file verifies, a new event fetched from the
// API is stored as such, no source can be changed, and drifts are kept.
func TestMigrateEventSource(t *testing.T) {
	const id = "inq_src"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "personad.db")
	writeBeforeSource(t, path, id,
		storetest.Body("evt_1", engine.EventCreated, id, engine.StatusCreated, t0),
		storetest.Body("evt_2", engine.EventStarted, id, engine.StatusPending, t0.Add(time.Minute)))

	db := openPath(t, path, store.Options{})
	var version int
	readOnly(t, path, func(q *sql.DB) error { return q.QueryRow(`PRAGMA user_version`).Scan(&version) })
	if version != store.SchemaVersion() {
		t.Fatalf("user_version = %d after Open, want %d", version, store.SchemaVersion())
	}
	mustVerify(t, db, engine.Policy{})

	eng := engine.New(db, engine.Policy{})
	body := storetest.Body("evt_3", engine.EventCompleted, id, engine.StatusCompleted, t0.Add(2*time.Minute))
	if _, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: t0.Add(time.Hour), Source: engine.SourceAPI}); err != nil {
		t.Fatal(err)
	}
	recs, err := db.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.EventID] = r.Source
	}
	want := map[string]string{"evt_1": engine.SourceWebhook, "evt_2": engine.SourceWebhook, "evt_3": engine.SourceAPI}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sources after the migration: %v, want %v", got, want)
	}
	mustVerify(t, db, engine.Policy{})

	raw := rawDB(t, path, "_pragma=busy_timeout(5000)")
	if _, err := raw.Exec(`UPDATE events SET source = 'api' WHERE event_id = 'evt_1'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("changing a stored event's source: %v, want append-only", err)
	}
	if _, err := raw.Exec(`INSERT INTO events (seq, event_key, event_id, name, object_type, object_id, created_at, received_at,
		attempts_made, deliveries, outcome, sha256, body, source) VALUES (99, 99, 'evt_x', 'x', 'x', 'x', 0, 0, 1, 1, 'unknown', x'00', x'00', 'email')`); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Errorf("storing an event of source email: %v, want a CHECK failure", err)
	}
	raw.Close()

	d, wrote, err := eng.CheckStatus(ctx, id, engine.StatusApproved, t0.Add(2*time.Hour))
	if err != nil || !wrote || d == nil || d.Status != engine.StatusCompleted {
		t.Fatalf("CheckStatus after the migration: %+v, %t, %v; want a drift from completed written", d, wrote, err)
	}
	if drifts, err := db.Drifts(ctx, []string{id}); err != nil || drifts[id].PersonaStatus != engine.StatusApproved {
		t.Errorf("Drifts after CheckStatus: %v, %v; want Persona's approved", drifts, err)
	}
}

// writeBeforeSource writes a file of the schema version before the
// events' source (every migration numbered below it) holding the inquiry
// events given, received a second apart, with their hash chain and the
// projection they fold to, as that version's store wrote them.
func writeBeforeSource(tb testing.TB, path, id string, bodies ...[]byte) {
	tb.Helper()
	raw := schemaBefore(tb, path, store.VersionEventSource)
	var (
		prev   [32]byte
		events []*engine.Event
	)
	received := time.Date(2024, 3, 16, 9, 0, 0, 0, time.UTC)
	for i, body := range bodies {
		ev, err := engine.Parse(body)
		if err != nil {
			tb.Fatal(err)
		}
		events = append(events, ev)
		seq, sum, at := int64(i+1), sha256.Sum256(body), received.Add(time.Duration(i)*time.Second).UnixMilli()
		prev = store.ChainLink(prev, seq, ev.ID, sum, at)
		if _, err := raw.Exec(`INSERT INTO events (seq, event_id, name, object_type, object_id, created_at, received_at,
			attempts_made, deliveries, outcome, sha256, body, chain) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, 'applied', ?, ?, ?)`,
			seq, ev.ID, ev.Name, ev.ObjectType, ev.ObjectID, ev.CreatedAt.UnixMilli(), at, sum[:], body, prev[:]); err != nil {
			tb.Fatal(err)
		}
	}
	inq, _ := engine.Fold(id, events, engine.Policy{})
	doc, err := inq.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc, created_at)
		VALUES (?, ?, NULL, 0, ?, ?, ?, ?)`, id, string(inq.Status), inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc),
		inq.ListedAt(true).UnixMilli()); err != nil {
		tb.Fatal(err)
	}
	mustExec(tb, raw, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := raw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// schemaBefore creates a database at path with the schema of the version
// before version (every migration numbered below it), as that version
// wrote it, and returns a raw connection to it.
func schemaBefore(tb testing.TB, path string, version int) *sql.DB {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		tb.Fatal(err)
	}
	raw := rawDB(tb, path, "_pragma=journal_mode(WAL)")
	for _, name := range names {
		n, _, _ := strings.Cut(filepath.Base(name), "_")
		if v, _ := strconv.Atoi(n); v >= version {
			continue
		}
		script, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		mustExec(tb, raw, string(script))
	}
	mustExec(tb, raw, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = 1885696627", version-1)) // "pers"
	return raw
}
