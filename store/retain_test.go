package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/bodycodec"
	"github.com/personad/personad/store"
)

// recentPII gives each fixturePII string another person's value, so that
// bodies received after the cutoff hold data Retain must keep and a scan
// for the fixture's PII must not find.
var recentPII = strings.NewReplacer(
	"Jane", "Ruth", "Marie", "Anne", "Doe", "Roe", "123 Main St", "9 Elm Road",
	"San Francisco", "Sacramento", "94111", "95814", "1995-09-08", "1988-01-02",
	"jane@example.com", "ruth@example.org", "+14155550123", "+19165550199",
	"D1234567", "E7654321", "123-45-6789", "987-65-4321",
	"called support about her licence", "asked about a renewal",
	"192.0.2.4", "198.51.100.9", "37.7749", "38.5816", "-122.4194", "-121.4944",
	"Mozilla/5.0", "Opera/9.80",
)

// recentMarkers are strings of recentPII's person: retained files must
// still hold them.
var recentMarkers = []string{"Ruth", "9 Elm Road", "ruth@example.org"}

// personalise gives body another person's data.
func personalise(tb testing.TB, body []byte) []byte {
	tb.Helper()
	out := []byte(recentPII.Replace(string(body)))
	for _, pii := range fixturePII {
		if bytes.Contains(out, []byte(pii)) {
			tb.Fatalf("personalised body still holds %q", pii)
		}
	}
	return out
}

// ingestAt ingests body as received at at and returns its event id.
func ingestAt(tb testing.TB, eng *engine.Engine, body []byte, at time.Time) string {
	tb.Helper()
	res, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: at, AttemptsMade: 1})
	if err != nil {
		tb.Fatalf("Ingest: %v", err)
	}
	return res.EventID
}

// deadLetterAt ingests a body that is no Persona event, as received at at.
func deadLetterAt(tb testing.TB, eng *engine.Engine, body []byte, at time.Time) {
	tb.Helper()
	_, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: at, AttemptsMade: 1})
	if !errors.Is(err, engine.ErrMalformed) {
		tb.Fatalf("Ingest of %q: %v, want a malformed event", body, err)
	}
}

// filesHolding lists where each of strs occurs in the database file, its
// WAL and its shared-memory index, and in the stored bodies decoded
// (bodiesHolding), which the raw bytes of compressed bodies do not show.
func filesHolding(tb testing.TB, path string, strs []string) []string {
	tb.Helper()
	var found []string
	for _, file := range []string{path, path + "-wal", path + "-shm"} {
		raw, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, s := range strs {
			if i := bytes.Index(raw, []byte(s)); i >= 0 {
				found = append(found, fmt.Sprintf("%s holds %q at offset %d", filepath.Base(file), s, i))
			}
		}
	}
	return append(found, bodiesHolding(tb, path, strs)...)
}

// storedRows reads every row of table by seq: each column but body as
// text, and the body apart, decoded.
func storedRows(tb testing.TB, path, table string) (columns map[int64]string, bodies map[int64][]byte) {
	tb.Helper()
	rows, err := rawDB(tb, path, "mode=ro").Query(`SELECT * FROM ` + table)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	columns, bodies = map[int64]string{}, map[int64][]byte{}
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		var seq int64
		var b strings.Builder
		for i, n := range names {
			switch n {
			case "seq":
				seq = vals[i].(int64)
			case "body":
				body, err := bodycodec.Decode(vals[i].([]byte))
				if err != nil {
					tb.Fatalf("%s #%d: %v", table, seq, err)
				}
				bodies[seq] = body
				continue
			}
			fmt.Fprintf(&b, "%s=%v ", n, vals[i])
		}
		columns[seq] = b.String()
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return columns, bodies
}

// projections returns every stored inquiry as GetInquiry returns it, as
// JSON, by id.
func projections(tb testing.TB, db *store.DB, path string) map[string]string {
	tb.Helper()
	rows, err := rawDB(tb, path, "mode=ro").Query(`SELECT id FROM inquiries`)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	docs := map[string]string{}
	for _, id := range ids {
		docs[id] = jsonOf(tb, mustInquiry(tb, db, id))
	}
	return docs
}

// TestRetain ingests a history received long ago (the fixture inquiry, its
// related events and 70 generated inquiries, more than one chunk) and
// another person's recent one, with dead letters of both ages, and retains
// what is older than a cutoff between them.
func TestRetain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{ForgetWithin: 50 * time.Millisecond})
	eng := engine.New(db, engine.Policy{})
	now := time.Now()
	cutoff := now.Add(-90 * 24 * time.Hour)

	g := newGenerator(t)
	inquiryHistory := history(t)
	oldBodies := slices.Concat(relatedHistory(t), inquiryHistory[:len(inquiryHistory)-1], g.bodies(70)) // not the redaction
	var recentBodies [][]byte
	for n := 100; n < 105; n++ {
		for step := range lifecycle {
			recentBodies = append(recentBodies, personalise(t, g.body(n, step)))
		}
	}
	sent := map[string][]byte{} // event id → body as received
	at := cutoff.Add(-24 * time.Hour)
	for _, b := range oldBodies {
		sent[ingestAt(t, eng, b, at)] = b
		at = at.Add(time.Millisecond)
	}
	deadLetterAt(t, eng, []byte(`{"name":"Jane Doe","email":"jane@example.com"}`), at)
	deadLetterAt(t, eng, []byte("Jane Doe, 123 Main St, San Francisco"), at)
	at = now.Add(-time.Hour)
	recentIDs := map[string]bool{}
	for _, b := range recentBodies {
		id := ingestAt(t, eng, b, at)
		sent[id], recentIDs[id] = b, true
		at = at.Add(time.Millisecond)
	}
	recentDead := []byte(`{"name":"Ruth Roe","email":"ruth@example.org"}`)
	deadLetterAt(t, eng, recentDead, at)

	wantDocs := projections(t, db, path)
	wantColumns, _ := storedRows(t, path, "events")
	wantDeadColumns, _ := storedRows(t, path, "dead_letters")
	if len(filesHolding(t, path, fixturePII)) == 0 {
		t.Fatal("the old history holds no PII: this test tests nothing")
	}

	rep, err := db.Retain(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsScanned != len(oldBodies) || rep.EventsScrubbed != len(oldBodies) ||
		rep.DeadLettersScanned != 2 || rep.DeadLettersScrubbed != 2 {
		t.Errorf("report = %+v, want %d events and 2 dead letters scanned and scrubbed", rep, len(oldBodies))
	}

	t.Run("old bodies are scrubbed, recent ones kept byte for byte", func(t *testing.T) {
		columns, bodies := storedRows(t, path, "events")
		for seq, body := range bodies {
			id := eventIDOf(t, columns[seq])
			switch {
			case recentIDs[id]:
				if !bytes.Equal(body, sent[id]) {
					t.Errorf("recent event %s: body changed", id)
				}
			case bytes.Equal(body, sent[id]):
				t.Errorf("old event %s: body kept as received", id)
			default:
				for _, pii := range fixturePII {
					if bytes.Contains(body, []byte(pii)) {
						t.Errorf("old event %s still holds %q", id, pii)
					}
				}
			}
		}
		_, dead := storedRows(t, path, "dead_letters")
		for seq, body := range dead {
			if recent := bytes.Equal(body, recentDead); recent != (seq == 3) {
				t.Errorf("dead letter #%d = %q: recent one changed or old one kept", seq, body)
			}
		}
	})
	t.Run("every projection is unchanged", func(t *testing.T) {
		got := projections(t, db, path)
		if len(got) != len(wantDocs) {
			t.Errorf("%d projections, want %d", len(got), len(wantDocs))
		}
		for id, want := range wantDocs {
			if got[id] != want {
				t.Errorf("%s:\ngot  %s\nwant %s", id, got[id], want)
			}
		}
	})
	t.Run("every column but the body is unchanged", func(t *testing.T) {
		for _, c := range []struct {
			table string
			want  map[int64]string
		}{{"events", wantColumns}, {"dead_letters", wantDeadColumns}} {
			got, _ := storedRows(t, path, c.table)
			for seq, want := range c.want {
				if got[seq] != want {
					t.Errorf("%s #%d:\ngot  %s\nwant %s", c.table, seq, got[seq], want)
				}
			}
		}
	})
	t.Run("SHA-256 is of the body as received", func(t *testing.T) {
		for id, body := range sent {
			var sum []byte
			if err := rawDB(t, path, "mode=ro").QueryRow(`SELECT sha256 FROM events WHERE event_id = ?`, id).Scan(&sum); err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
				t.Errorf("%s: SHA-256 is not that of the body as received", id)
			}
		}
	})
	t.Run("a second run scrubs and scans nothing", func(t *testing.T) {
		rep, err := db.Retain(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		rep.Duration = 0
		if rep != (store.RetainReport{}) {
			t.Errorf("second run: %+v, want nothing scanned", rep)
		}
	})
	t.Run("Rebuild changes nothing", func(t *testing.T) {
		rep, err := db.Rebuild(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Changed) != 0 || rep.Changes != 0 {
			t.Errorf("Rebuild after Retain: %+v, want nothing changed", rep)
		}
	})
	t.Run("the old PII leaves the WAL and the file", func(t *testing.T) {
		scanForPIIWithin(t, path, 5*time.Second, "while open")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for _, found := range filesHolding(t, path, fixturePII) {
			t.Errorf("after close: %s", found)
		}
		if len(filesHolding(t, path, recentMarkers)) == 0 {
			t.Error("the recent bodies are not found in the file: the scan tests nothing")
		}
	})
}

// eventIDOf picks the event_id out of a storedRows columns string.
func eventIDOf(tb testing.TB, columns string) string {
	tb.Helper()
	for f := range strings.FieldsSeq(columns) {
		if id, ok := strings.CutPrefix(f, "event_id="); ok {
			return id
		}
	}
	tb.Fatalf("no event_id in %q", columns)
	return ""
}

// TestRetainStopsAtTheFirstRecentRow: a run stops at the first event
// received after the cutoff, even when an older one follows it in the log,
// and a later run picks that one up.
func TestRetainStopsAtTheFirstRecentRow(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	now := time.Now()
	cutoff := now.Add(-time.Hour)
	for i, at := range []time.Time{cutoff.Add(-time.Minute), now, cutoff.Add(-time.Second)} {
		ingestAt(t, eng, g.body(i, 0), at)
	}
	tests := []struct {
		cutoff                  time.Time
		wantScanned, wantScrubs int
	}{
		{cutoff, 1, 1},               // the first, not the third
		{cutoff, 0, 0},               // nothing new
		{now.Add(time.Second), 2, 2}, // the second and the third
		{now.Add(time.Minute), 0, 0}, // nothing new
	}
	for i, tt := range tests {
		rep, err := db.Retain(ctx, tt.cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if rep.EventsScanned != tt.wantScanned || rep.EventsScrubbed != tt.wantScrubs {
			t.Errorf("run %d: scanned %d, scrubbed %d; want %d, %d", i, rep.EventsScanned, rep.EventsScrubbed, tt.wantScanned, tt.wantScrubs)
		}
	}
}

// TestRetainReportsAnUnscrubbableBody: a stored body that is not JSON
// stops Retain with an error naming its seq; what comes before it is kept
// and every later run stops there again.
func TestRetainReportsAnUnscrubbableBody(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	old := time.Now().Add(-48 * time.Hour)
	ingestAt(t, eng, g.body(0, 0), old)
	bad := record("evt_bad", "inq_bad")
	bad.Body = []byte("not JSON")
	bad.SHA256 = sha256.Sum256(bad.Body)
	if err := db.Update(ctx, func(tx engine.Tx) error { return tx.AppendEvent(bad) }); err != nil {
		t.Fatal(err)
	}
	ingestAt(t, eng, g.body(1, 0), old)

	for i, wantScrubs := range []int{1, 0} {
		rep, err := db.Retain(ctx, time.Now())
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("event #%d", bad.Seq)) || errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("run %d: error %v, want one naming event #%d", i, err, bad.Seq)
		}
		if rep.EventsScrubbed != wantScrubs || rep.EventsScanned != wantScrubs {
			t.Errorf("run %d: %+v, want %d scanned and scrubbed", i, rep, wantScrubs)
		}
	}
}

func TestRetainErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Retain(canceled, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v, want context.Canceled", err)
	}
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Retain(ctx, time.Now()); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("read-only: %v, want engine.ErrUnavailable", err)
	}
}
