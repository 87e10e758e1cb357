package store_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// TestEventKeyCollision forces every event id onto one event_key: distinct
// events must still be stored apart, each redelivery must find its own
// event, and the file must verify. A hash collision may cost a lookup,
// never merge two events.
func TestEventKeyCollision(t *testing.T) {
	defer store.SetEventKey(func(string) int64 { return 42 })()
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	bodies := g.bodies(3)
	for i, b := range bodies {
		if res := ingest(t, eng, b); res.Duplicate {
			t.Fatalf("event %d is a duplicate of another with its key", i)
		}
	}
	for i, b := range bodies {
		if res := ingest(t, eng, b); !res.Duplicate {
			t.Errorf("redelivery of event %d is not a duplicate", i)
		}
	}
	var keys []int64
	readOnly(t, path, func(q *sql.DB) error {
		rows, err := q.Query(`SELECT event_key FROM events`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k int64
			if err := rows.Scan(&k); err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return rows.Err()
	})
	if len(keys) != len(bodies) {
		t.Fatalf("%d events stored, want %d", len(keys), len(bodies))
	}
	for _, k := range keys {
		if k != 42 {
			t.Fatalf("event_key %d stored, want the forced 42: the test forced no collision", k)
		}
	}
	for n := range 3 {
		recs, err := db.Events(ctx, g.inquiryID(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(lifecycle) {
			t.Fatalf("inquiry %d: %d events, want %d", n, len(recs), len(lifecycle))
		}
		for step, r := range recs {
			if want := g.body(n, step); !bytes.Equal(r.Body, want) || r.Deliveries != 2 {
				t.Errorf("inquiry %d step %d: %d deliveries, body %.60q; want 2, %.60q", n, step, r.Deliveries, r.Body, want)
			}
		}
	}
	mustVerify(t, db, engine.Policy{})

	raw := rawDB(t, path, "_pragma=busy_timeout(5000)")
	_, err := raw.Exec(`INSERT INTO events (seq, event_key, event_id, name, object_type, object_id, created_at, received_at,
		attempts_made, deliveries, outcome, sha256, body) SELECT 99, event_key, event_id, name, object_type, object_id,
		created_at, received_at, 1, 1, outcome, sha256, body FROM events WHERE seq = 1`)
	if err == nil || !strings.Contains(err.Error(), "event already stored") {
		t.Errorf("storing an event id twice: %v, want events_unique_id to refuse it", err)
	}
	if _, err := raw.Exec(`UPDATE events SET event_key = 7 WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("changing an event_key: %v, want append-only", err)
	}
}

// TestEventQueriesUseIndexes pins which index each query that finds
// events uses, so that a change to the schema or to a query cannot turn
// a lookup into a scan of the log unnoticed.
func TestEventQueriesUseIndexes(t *testing.T) {
	db := openTemp(t, store.Options{})
	want := map[string]string{
		"dedup lookup":          "SEARCH events USING INDEX events_by_key (event_key=?)",
		"an inquiry's events":   "SEARCH events USING INDEX events_by_object (object_id=? AND object_type=?)",
		"related events":        "SEARCH events USING INDEX events_by_related_inquiry (related_inquiry_id=?)",
		"an object's bodies":    "SEARCH events USING INDEX events_by_object (object_id=?)",
		"an inquiry's parts":    "SEARCH events USING INDEX events_by_object (object_id=?)",
		"an event's body":       "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)",
		"rebuild's bodies":      "SCAN events USING INDEX events_by_object",
		"an object's conflicts": "MULTI-INDEX OR",
	}
	for name, q := range store.EventQueries {
		plan, err := store.QueryPlan(db, q.SQL, q.Args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w, ok := want[name]; !ok || !strings.HasPrefix(plan, w) {
			t.Errorf("%s: plan\n%s\nwant it to start %q", name, plan, w)
		}
	}
}
