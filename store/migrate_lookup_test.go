package store_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// TestMigrateFillsLookupColumns opens a file of the version before the
// lookup columns, with projections that name a user, an account and a
// template and one that shows no created-at, and checks that the
// migration filled the columns from each projection's doc as
// SaveInquiry writes them: the listings by user, account and template
// find them, newest created first (the updated instant when unknown).
func TestMigrateFillsLookupColumns(t *testing.T) {
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	old := []*engine.Inquiry{
		{ID: "inq_old", Status: engine.StatusApproved, Decision: engine.StatusApproved, ReferenceID: "user-1",
			AccountID: "act_1", TemplateID: "itmpl_1", CreatedAt: t0, UpdatedAt: t0.Add(48 * time.Hour), EventCount: 2},
		{ID: "inq_new", Status: engine.StatusPending, ReferenceID: "user-1", AccountID: "act_1", TemplateID: "itmpl_2",
			CreatedAt: t0.Add(time.Hour + 400*time.Microsecond), UpdatedAt: t0.Add(time.Hour), EventCount: 1},
		// No event showed its created-at: listed at its updated instant.
		{ID: "inq_nocreated", Status: engine.StatusCreated, ReferenceID: "user-1", UpdatedAt: t0.Add(30 * time.Minute), EventCount: 1},
		{ID: "inq_other", Status: engine.StatusCreated, ReferenceID: "user-2", AccountID: "act_2", CreatedAt: t0, UpdatedAt: t0, EventCount: 1},
		{ID: "inq_anonymous", Status: engine.StatusCreated, CreatedAt: t0, UpdatedAt: t0, EventCount: 1},
	}
	path := filepath.Join(t.TempDir(), "personad.db")
	writeBeforeLookup(t, path, old)

	db := openPath(t, path, store.Options{})
	var version int
	readOnly(t, path, func(q *sql.DB) error { return q.QueryRow(`PRAGMA user_version`).Scan(&version) })
	if version != store.SchemaVersion() {
		t.Fatalf("user_version = %d after Open, want %d", version, store.SchemaVersion())
	}
	for _, tc := range []struct {
		q    engine.Query
		want []string
	}{
		{engine.Query{ReferenceID: "user-1"}, []string{"inq_new", "inq_nocreated", "inq_old"}},
		{engine.Query{ReferenceID: "user-1", Limit: 1}, []string{"inq_new", "inq_nocreated", "inq_old"}},
		{engine.Query{AccountID: "act_1"}, []string{"inq_new", "inq_old"}},
		{engine.Query{TemplateID: "itmpl_1"}, []string{"inq_old"}},
		{engine.Query{ReferenceID: "user-2"}, []string{"inq_other"}},
	} {
		if got := listIDs(t, db, tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("Inquiries(%+v) after the migration: %v, want %v", tc.q, got, tc.want)
		}
	}
	readOnly(t, path, func(q *sql.DB) error {
		var n int
		err := q.QueryRow(`SELECT count(*) FROM inquiries WHERE id = 'inq_anonymous'
			AND reference_id IS NULL AND account_id IS NULL AND template_id IS NULL AND created_at = ?`, t0.UnixMilli()).Scan(&n)
		if err == nil && n != 1 {
			t.Errorf("an inquiry without a user, account or template: columns not NULL, or created_at not its created-at")
		}
		return err
	})
}

// writeBeforeLookup writes a file of the schema version before the lookup
// columns (every migration numbered below 0006_lookup_columns.sql, so
// that the test follows a renumbering) holding the projections given, as
// that version's SaveInquiry wrote them.
func writeBeforeLookup(tb testing.TB, path string, inqs []*engine.Inquiry) {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(names)
	lookup := slices.IndexFunc(names, func(n string) bool { return strings.HasSuffix(n, "_lookup_columns.sql") })
	if lookup < 0 {
		tb.Fatal("no migrations/*_lookup_columns.sql")
	}
	raw := rawDB(tb, path, "_pragma=journal_mode(WAL)")
	for _, name := range names[:lookup] {
		script, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		mustExec(tb, raw, string(script))
	}
	mustExec(tb, raw, "PRAGMA user_version = "+strconv.Itoa(lookup)+"; PRAGMA application_id = 1885696627") // "pers"
	for _, inq := range inqs {
		inq.Tags = []string{}
		doc, err := inq.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		var decision any
		if inq.Decision != "" {
			decision = string(inq.Decision)
		}
		if _, err := raw.Exec(`INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc) VALUES (?, ?, ?, 0, ?, 0, ?)`,
			inq.ID, string(inq.Status), decision, inq.UpdatedAt.UnixMilli(), string(doc)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// listIDs pages through a listing and returns the ids listed.
func listIDs(tb testing.TB, db engine.Reader, q engine.Query) []string {
	tb.Helper()
	var ids []string
	for page := 0; page < 100; page++ {
		got, next, err := db.Inquiries(tb.Context(), q)
		if err != nil {
			tb.Fatal(err)
		}
		for _, inq := range got {
			ids = append(ids, inq.ID)
		}
		if next == "" {
			return ids
		}
		q.Cursor = next
	}
	tb.Fatal("the listing does not end")
	return nil
}
