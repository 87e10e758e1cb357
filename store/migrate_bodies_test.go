package store_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/bodycodec"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/store"
)

// TestMigrateToEncodedBodies migrates a file of the schema before
// store.VersionBodiesEncoded holding realistic rows (personad bench's
// stream, with its redactions and related objects, a conflicting
// redelivery and a dead letter): afterwards it verifies, every history,
// body, conflict and dead letter reads as it did, a redelivery is still
// a duplicate, and the old raw bodies are gone from the file's bytes.
func TestMigrateToEncodedBodies(t *testing.T) {
	dir := t.TempDir()
	current, old := filepath.Join(dir, "current.db"), filepath.Join(dir, "v10.db")

	// The rows as the engine writes them, at this schema...
	db := openPath(t, current, store.Options{})
	eng := engine.New(db, engine.Policy{})
	gen := loadgen.New(loadgen.Config{Seed: 11, Events: 600})
	var bodies [][]byte
	inquiries := map[string]bool{}
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		bodies = append(bodies, ev.Body)
		inquiries[ev.Inquiry.ID] = true
		ingest(t, eng, ev.Body)
	}
	// A history that ends in a redaction, which scrubs its bodies.
	redacted, err := loadgen.Example(loadgen.ExampleConfig{Name: engine.EventRedacted, Seed: 3, End: loadgen.Epoch.Add(6 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range redacted {
		bodies = append(bodies, ev.Body)
		inquiries[ev.Inquiry.ID] = true
		ingest(t, eng, ev.Body)
	}
	conflicting := bytes.Replace(bodies[0], []byte(`"reference-id":"user-`), []byte(`"reference-id":"usr-`), 1)
	if bytes.Equal(conflicting, bodies[0]) {
		t.Fatal("the first body has no reference-id to change")
	}
	if res := ingest(t, eng, conflicting); !res.Duplicate {
		t.Fatalf("the changed first body is not a redelivery: %+v", res)
	}
	dead := []byte(`{"data": {"type": "event", "attributes": "Alexandra Migrationtest, 1 Old Road"}}`)
	if _, err := eng.Ingest(ctx, engine.Delivery{Body: dead, ReceivedAt: time.Now()}); err == nil {
		t.Fatal("the dead letter was ingested")
	}
	want := readEverything(t, db, eng, inquiries)
	if len(want.conflicts) != 1 || len(want.deadLetters) != 1 || want.redacted == 0 {
		t.Fatalf("%d conflicts, %d dead letters, %d redacted inquiries: want 1, 1 and some, or this tests less than it says",
			len(want.conflicts), len(want.deadLetters), want.redacted)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// ...written to a file of version 10, bodies as received, as the
	// code before bodiesEncodedVersion wrote them.
	writeBeforeEncodedBodies(t, old, current)
	rawBefore := readDiskFile(t, old)
	var needles [][]byte
	for _, b := range want.bodies {
		for i := 0; i+rawWindow <= len(b); i += 512 {
			needles = append(needles, b[i:i+rawWindow])
		}
	}
	found := 0
	for _, n := range needles {
		if bytes.Contains(rawBefore, n) {
			found++
		}
	}
	if found < len(needles)/2 {
		t.Fatalf("only %d of %d pieces of the bodies are in the version 10 file: this test tests nothing", found, len(needles))
	}

	migrated := openPath(t, old, store.Options{})
	var version int
	readOnly(t, old, func(q *sql.DB) error { return q.QueryRow(`PRAGMA user_version`).Scan(&version) })
	if version != store.SchemaVersion() {
		t.Fatalf("user_version = %d after Open, want %d", version, store.SchemaVersion())
	}
	mustVerify(t, migrated, engine.Policy{})
	meng := engine.New(migrated, engine.Policy{})
	got := readEverything(t, migrated, meng, inquiries)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the migrated file reads otherwise:\n%s", diffEverything(got, want))
	}
	if res := ingest(t, meng, bodies[len(bodies)/2]); !res.Duplicate {
		t.Error("a redelivery after the migration is not a duplicate")
	}
	if err := migrated.Close(); err != nil {
		t.Fatal(err)
	}

	var left []string
	for _, file := range diskFiles(old) {
		raw := readDiskFile(t, file)
		for _, n := range needles {
			if i := bytes.Index(raw, n); i >= 0 {
				left = append(left, fmt.Sprintf("%s at %d: %.40q", filepath.Base(file), i, n))
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("%d pieces of the raw bodies are still in the migrated file:\n%s", len(left), strings.Join(left[:min(len(left), 10)], "\n"))
	}
	readOnly(t, old, func(q *sql.DB) error {
		rows, err := q.Query(`SELECT body FROM events UNION ALL SELECT body FROM conflicts UNION ALL SELECT body FROM dead_letters`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return err
			}
			if _, err := bodycodec.Decode(b); err != nil {
				t.Errorf("a body after the migration: %v", err)
			}
		}
		return rows.Err()
	})
}

// rawWindow is the length of the pieces of the bodies looked for in the
// raw bytes: long enough that S2 keeps none as a literal run of a body.
const rawWindow = 96

// everything is what a store returns of its rows.
type everything struct {
	events, related map[string][]engine.Record
	history         map[string][]engine.Entry
	projections     map[string]*engine.Inquiry
	conflicts       []engine.Conflict
	deadLetters     []engine.DeadLetter
	bodies          [][]byte // every event's, conflict's and dead letter's
	redacted        int
}

func readEverything(t *testing.T, db *store.DB, eng *engine.Engine, inquiries map[string]bool) everything {
	t.Helper()
	e := everything{events: map[string][]engine.Record{}, related: map[string][]engine.Record{},
		history: map[string][]engine.Entry{}, projections: map[string]*engine.Inquiry{}}
	for _, id := range slices.Sorted(maps.Keys(inquiries)) {
		var err error
		if e.events[id], err = db.Events(ctx, id); err != nil {
			t.Fatal(err)
		}
		if e.related[id], err = db.RelatedEvents(ctx, id); err != nil {
			t.Fatal(err)
		}
		if e.history[id], err = eng.History(ctx, id); err != nil {
			t.Fatal(err)
		}
		inq := mustInquiry(t, db, id)
		e.projections[id] = inq
		if inq.Redacted {
			e.redacted++
		}
		for _, r := range append(e.events[id], e.related[id]...) {
			e.bodies = append(e.bodies, r.Body)
		}
	}
	var err error
	if e.conflicts, err = db.Conflicts(ctx, engine.MaxLimit); err != nil {
		t.Fatal(err)
	}
	if e.deadLetters, err = db.DeadLetters(ctx, engine.MaxLimit); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.conflicts {
		e.bodies = append(e.bodies, c.Body)
	}
	for _, d := range e.deadLetters {
		e.bodies = append(e.bodies, d.Body)
	}
	return e
}

func diffEverything(got, want everything) string {
	var out []string
	for id := range want.events {
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"events", got.events[id], want.events[id]}, {"related events", got.related[id], want.related[id]},
			{"history", got.history[id], want.history[id]}, {"projection", got.projections[id], want.projections[id]},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				out = append(out, fmt.Sprintf("%s of %s: got %+v\nwant %+v", f.name, id, f.got, f.want))
			}
		}
	}
	if !reflect.DeepEqual(got.conflicts, want.conflicts) {
		out = append(out, fmt.Sprintf("conflicts: got %+v\nwant %+v", got.conflicts, want.conflicts))
	}
	if !reflect.DeepEqual(got.deadLetters, want.deadLetters) {
		out = append(out, fmt.Sprintf("dead letters: got %+v\nwant %+v", got.deadLetters, want.deadLetters))
	}
	return strings.Join(out[:min(len(out), 5)], "\n")
}

// writeBeforeEncodedBodies writes at path a file of the schema version
// before store.VersionBodiesEncoded (every migration numbered below it)
// holding the rows of the file at src, with every body decoded, as the
// code of that version stored them.
func writeBeforeEncodedBodies(tb testing.TB, path, src string) {
	tb.Helper()
	raw := schemaBefore(tb, path, store.VersionBodiesEncoded)
	mustExec(tb, raw, fmt.Sprintf("ATTACH DATABASE 'file:%s?mode=ro' AS src", src))
	for _, table := range []string{"inquiries", "changes", "links", "forgotten", "settings", "notify_endpoints", "drifts", "state"} {
		mustExec(tb, raw, fmt.Sprintf("INSERT INTO main.%[1]s SELECT * FROM src.%[1]s", table))
	}
	for _, c := range []struct{ table, columns string }{
		{"events", `seq, event_id, name, object_type, object_id, related_inquiry_id, created_at, received_at,
			attempts_made, deliveries, outcome, sha256, chain, parts, source`},
		{"conflicts", `seq, event_id, object_id, body_object_id, received_at, deliveries, sha256`},
		{"dead_letters", `seq, received_at, reason, sha256, deliveries, replayed_at, replayed_event_id`},
	} {
		mustExec(tb, raw, fmt.Sprintf("INSERT INTO main.%[1]s (%[2]s, body) SELECT %[2]s, body FROM src.%[1]s", c.table, c.columns))
		decodeAll(tb, raw, c.table)
	}
	mustExec(tb, raw, "DETACH DATABASE src")
	mustExec(tb, raw, "VACUUM") // no encoded body left in a freed page
	if err := raw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// decodeAll replaces every body of table with the body it encodes.
func decodeAll(tb testing.TB, raw *sql.DB, table string) {
	tb.Helper()
	rows, err := raw.Query(`SELECT seq, body FROM main.` + table)
	if err != nil {
		tb.Fatal(err)
	}
	decoded := map[int64][]byte{}
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			tb.Fatal(err)
		}
		if decoded[seq], err = bodycodec.Decode(b); err != nil {
			tb.Fatalf("%s #%d: %v", table, seq, err)
		}
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
	for seq, b := range decoded {
		if _, err := raw.Exec(`UPDATE main.`+table+` SET body = ? WHERE seq = ?`, b, seq); err != nil {
			tb.Fatal(err)
		}
	}
}
