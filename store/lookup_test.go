package store_test

import (
	"bytes"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// TestListingByUserUsesIndex: every listing by reference, account or
// template, with or without the other filters and a cursor, is read from
// that column's index in its order: no scan of the table, no sort.
func TestListingByUserUsesIndex(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for i, id := range []string{"inq_a", "inq_b", "inq_c"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		ingest(t, eng, storetest.UserBody("evt_"+id, engine.EventApproved, id, "user-1", "act_1", engine.StatusApproved, at, at))
	}
	_, cursor, err := db.Inquiries(t.Context(), engine.Query{ReferenceID: "user-1", Limit: 1})
	if err != nil || cursor == "" {
		t.Fatalf("first page: cursor %q, err %v", cursor, err)
	}
	yes := true
	for _, tc := range []struct {
		name, index string
		q           engine.Query
	}{
		{"reference", "inquiries_by_reference", engine.Query{ReferenceID: "user-1"}},
		{"reference after a cursor", "inquiries_by_reference", engine.Query{ReferenceID: "user-1", Cursor: cursor}},
		{"reference and status", "inquiries_by_reference", engine.Query{ReferenceID: "user-1", Status: engine.StatusApproved}},
		{"reference, decision, redacted", "inquiries_by_reference",
			engine.Query{ReferenceID: "user-1", Decision: engine.StatusApproved, Redacted: &yes, Cursor: cursor}},
		{"reference and account", "inquiries_by_reference", engine.Query{ReferenceID: "user-1", AccountID: "act_1"}},
		{"account", "inquiries_by_account", engine.Query{AccountID: "act_1", Cursor: cursor}},
		{"account and status", "inquiries_by_account", engine.Query{AccountID: "act_1", Status: engine.StatusPending}},
		{"template", "inquiries_by_template", engine.Query{TemplateID: "itmpl_lookup", Cursor: cursor}},
		{"template and decision", "inquiries_by_template", engine.Query{TemplateID: "itmpl_lookup", Decision: engine.StatusDeclined}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := store.ListingPlan(db, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan, "USING INDEX "+tc.index) || strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("plan:\n%s\nwant a search of %s and no sort", plan, tc.index)
			}
		})
	}
}

// TestForgottenReferenceLeavesNoColumn: once an account's redaction
// forgets an inquiry's reference-id, no column of the file holds it,
// and a scan of the file's bytes (a compliance check) finds it nowhere.
func TestForgottenReferenceLeavesNoColumn(t *testing.T) {
	path := t.TempDir() + "/personad.db"
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	const reference = "user-forgotten-4711"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	ingest(t, eng, storetest.UserBody("evt_1", engine.EventCreated, "inq_1", reference, "act_1", engine.StatusCreated, t0, t0))
	ingest(t, eng, storetest.UserBody("evt_2", engine.EventApproved, "inq_1", reference, "act_1", engine.StatusApproved, t0, t0.Add(time.Minute)))
	ingest(t, eng, storetest.AccountRedactedBody("evt_3", "act_1", t0.Add(2*time.Minute)))
	if page, _, err := db.Inquiries(t.Context(), engine.Query{ReferenceID: reference}); err != nil || len(page) != 0 {
		t.Errorf("by the forgotten reference: %d inquiries, %v; want none", len(page), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var n int
	readOnly(t, path, func(q *sql.DB) error {
		return q.QueryRow(`SELECT count(*) FROM inquiries WHERE reference_id IS NOT NULL`).Scan(&n)
	})
	if n != 0 {
		t.Errorf("%d inquiries still hold a reference_id", n)
	}
	for _, name := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(reference)) {
			t.Errorf("%s still holds the forgotten reference-id", name)
		}
	}
}

// TestRebuildRelistsLookupColumns: the lookup columns are copies of the
// projection, so a column edited behind personad's back (a forgotten
// reference id put back, say) is what verify reports and rebuild writes
// again from the projection, and a lookup then finds what the projection
// says.
func TestRebuildRelistsLookupColumns(t *testing.T) {
	path := t.TempDir() + "/personad.db"
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	ingest(t, eng, storetest.UserBody("evt_1", engine.EventApproved, "inq_1", "user-1", "act_1", engine.StatusApproved, t0, t0))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", store.WriterDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, raw, `UPDATE inquiries SET reference_id = 'user-2' WHERE id = 'inq_1'`)
	raw.Close()

	db = openPath(t, path, store.Options{})
	if _, err := db.Verify(t.Context(), engine.Policy{}, nil); err == nil || !strings.Contains(err.Error(), "lookup columns") {
		t.Errorf("verify of an edited lookup column: %v, want it named", err)
	}
	rep, err := db.Rebuild(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changed) != 1 || rep.Changed[0] != "inq_1" {
		t.Errorf("rebuild changed %v, want [inq_1]", rep.Changed)
	}
	for ref, want := range map[string]int{"user-1": 1, "user-2": 0} {
		if page, _, err := db.Inquiries(t.Context(), engine.Query{ReferenceID: ref}); err != nil || len(page) != want {
			t.Errorf("by %s after rebuild: %d inquiries, %v; want %d", ref, len(page), err, want)
		}
	}
	mustVerify(t, db, engine.Policy{})
}
