package store_test

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// TestPrivacyForgetsEveryFamily builds, from every body of
// testdata/persona, one inquiry with related objects of every family,
// delivers it all in a shuffled order with the redaction anywhere (first,
// last, in between), redeliveries and dead letters, and then scans the raw
// bytes of the database file, its WAL and its shared memory, while the
// store is open and after it closed: none of the person's values may be
// there. Variants: the three key inflections; a direct inquiry redaction
// (which keeps the reference-id) and an account redaction (which forgets
// the inquiry, its reference-id and everything of it); and parts that name
// their inquiry or only appear in the inquiry's lists.
func TestPrivacyForgetsEveryFamily(t *testing.T) {
	files := loadPersonaFiles(t)
	for _, inflection := range []struct {
		name    string
		inflect func(string) string
		seeds   uint64
	}{{"kebab", kebab, 5}, {"snake", snake, 3}, {"camel", camel, 3}} {
		for _, account := range []bool{false, true} {
			for _, relationships := range []bool{true, false} {
				c := privacyCase{inflection: inflection.name, inflect: inflection.inflect, account: account, relationships: relationships}
				t.Run(c.String(), func(t *testing.T) {
					t.Parallel()
					s := newPrivacyScenario(t, files, c)
					if len(s.personal) < 100 {
						t.Fatalf("only %d personal values: the scenario lost its bodies", len(s.personal))
					}
					for seed := range inflection.seeds {
						t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { s.run(t, seed) })
					}
				})
			}
		}
	}
}

// TestPrivacyScanFindsUnforgottenValues runs the account variant without
// any redaction (account, case or transaction): then the personal values
// must be found on disk, or the scan of TestPrivacyForgetsEveryFamily
// proves nothing.
func TestPrivacyScanFindsUnforgottenValues(t *testing.T) {
	c := privacyCase{inflection: "kebab", inflect: kebab, account: true, relationships: true}
	s := newPrivacyScenario(t, loadPersonaFiles(t), c)
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	for _, d := range s.events {
		if !strings.HasSuffix(d.file, "-redacted.json") {
			ingest(t, eng, d.body)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var disk []byte
	for _, file := range diskFiles(path) {
		disk = append(disk, readDiskFile(t, file)...)
	}
	found := s.needles.find(disk)
	var missing []string
	for i := range s.personal {
		v := &s.personal[i]
		if _, ok := found[v]; ok {
			continue
		}
		// A value that a page boundary splits is not in the raw bytes:
		// then it must be in a stored row.
		if rows, err := s.storedRows(path, []byte(v.raw)); err != nil || len(rows) == 0 {
			missing = append(missing, fmt.Sprintf("%q (%s): rows %v, %v", v.raw, v.file, rows, err))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d personal values not found in an unredacted database:\n%s",
			len(missing), len(s.personal), strings.Join(missing, "\n"))
	}
}

// TestPrivacyPersonalValues pins the rules that make the list of values
// to look for, independently of engine.Scrub.
func TestPrivacyPersonalValues(t *testing.T) {
	const body = `{"data": {"type": "event", "id": "evt_1", "attributes": {
		"name": "inquiry.approved", "created-at": "2024-03-15T18:30:00.000Z",
		"payload": {"data": {"type": "inquiry", "id": "inq_1", "attributes": {
			"status": "approved", "reference-id": "customer-42", "name-first": "Jane",
			"tags": ["vip-customer"], "birthdate": "1995-09-08", "note": "abc",
			"photo-url": "https:\/\/files.example\/jane.jpg",
			"decisioned-at": "2024-03-15T18:35:00.000Z", "selfie-photo": {"id": "not-an-id-but-a-secret"},
			"fields": {"name-last": {"type": "string", "value": "Doe-Smith"},
			           "address": {"type": "hash", "value": {"id": "field-held-id", "street-1": "123 Main St"}}},
			"behaviors": {"status": "approved", "user-agent": "Mozilla/5.0"}},
			"relationships": {"account": {"data": {"type": "account", "id": "act_1"}}}},
		"included": [{"type": "account", "id": "act_1", "attributes": {"reference-id": "account-ref-9", "name": "Jane"}}]},
		"context": {"added-tags": ["approved"]}}}}`
	root, err := parseJSON([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	always := []string{
		`Jane`, `vip-customer`, `1995-09-08`, `https:\/\/files.example\/jane.jpg`,
		`Doe-Smith`, `field-held-id`, `123 Main St`, `Mozilla/5.0`, `account-ref-9`,
	}
	tests := []struct {
		keepReference bool
		want          []string
	}{
		// "abc" is too short; "approved" in added-tags is a kept status;
		// selfie-photo's id is an id whatever its object.
		{keepReference: true, want: always},
		{keepReference: false, want: slices.Insert(slices.Clone(always), 0, "customer-42")},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("keep reference=%v", tt.keepReference), func(t *testing.T) {
			f := personaFile{name: "test.json", root: root}
			var got []string
			for _, v := range personalValues([]personaFile{f}, []*jsonNode{root}, nil, tt.keepReference) {
				got = append(got, v.raw)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("personal values:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
	t.Run("escaped value", func(t *testing.T) {
		values := personalValues([]personaFile{{name: "test.json", root: root}}, []*jsonNode{root}, nil, true)
		i := slices.IndexFunc(values, func(v personalValue) bool { return strings.HasPrefix(v.text, "https") })
		if i < 0 {
			t.Fatal("no URL among the personal values")
		}
		var forms []string
		for _, n := range needles(values[i:i+1], "") {
			forms = append(forms, string(n.bytes))
		}
		if want := []string{`https:\/\/files.example\/jane.jpg`, `https://files.example/jane.jpg`}; !slices.Equal(forms, want) {
			t.Errorf("needles = %q, want %q", forms, want)
		}
	})
}

// run delivers one shuffled order of the scenario to a new database and
// checks what it stored and what is left on disk.
func (s *privacyScenario) run(t *testing.T, seed uint64) {
	path := filepath.Join(t.TempDir(), "personad.db")
	// ForgetWithin 0: the WAL is checkpointed before a redaction is
	// acknowledged. Synchronous normal spares an fsync per delivery, which
	// would double the test's time: it changes when the bytes reach the
	// disk, not which bytes the files hold.
	db := openPath(t, path, store.Options{ForgetWithin: 0, Synchronous: "normal"})
	eng := engine.New(db, engine.Policy{})
	received := time.Date(2024, 9, 15, 0, 0, 1, 0, time.UTC)
	for i, d := range s.order(seed) {
		_, err := eng.Ingest(ctx, engine.Delivery{
			Body: d.body, ReceivedAt: received.Add(time.Duration(i) * time.Second), AttemptsMade: d.attempts,
		})
		switch {
		case d.dead && !errors.Is(err, engine.ErrMalformed):
			t.Fatalf("delivery %d, %s: Ingest = %v, want an error matching ErrMalformed", i, d.file, err)
		case !d.dead && err != nil:
			t.Fatalf("delivery %d, %s: Ingest: %v", i, d.file, err)
		}
	}

	s.checkStoredOnce(t, path, seed)
	s.checkDeadLetters(t, db)
	s.checkConflicts(t, db)
	s.checkProjection(t, db)
	s.checkDisk(t, path, "while open, as acknowledged")
	s.checkForgottenBodies(t, path)
	rep, err := db.Rebuild(ctx)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if len(rep.Changed) != 0 {
		t.Errorf("Rebuild changed %v: the projection was not the fold of the log", rep.Changed)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s.checkDisk(t, path, "after Close")
}

// checkStoredOnce wants one row per distinct event, with as many
// deliveries as it was delivered.
func (s *privacyScenario) checkStoredOnce(t *testing.T, path string, seed uint64) {
	t.Helper()
	want := map[string]int{}
	for _, d := range s.order(seed) {
		if !d.dead && !d.conflict {
			want[d.eventID]++
		}
	}
	got := map[string]int{}
	rows := 0
	readOnly(t, path, func(q *sql.DB) error {
		r, err := q.Query(`SELECT event_id, deliveries FROM events`)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var id string
			var n int
			if err := r.Scan(&id, &n); err != nil {
				return err
			}
			got[id], rows = n, rows+1
		}
		return r.Err()
	})
	if rows != len(want) {
		t.Errorf("%d events stored, want %d (the distinct events delivered)", rows, len(want))
	}
	for _, d := range s.events {
		if got[d.eventID] != want[d.eventID] {
			t.Errorf("%s (%s): stored with %d deliveries, want %d", d.eventID, d.file, got[d.eventID], want[d.eventID])
		}
	}
}

// checkDeadLetters wants every dead letter kept, with the SHA-256 of the
// body as received and a body that is no longer that one: null for one
// that was not JSON.
func (s *privacyScenario) checkDeadLetters(t *testing.T, db *store.DB) {
	t.Helper()
	dead, err := db.DeadLetters(ctx, engine.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	// Each is delivered twice, before and after the redaction: kept once
	// per body, the second delivery counted.
	if got, want := len(dead), len(s.deadLetters); got != want {
		t.Errorf("%d dead letters stored, want %d", got, want)
	}
	for _, d := range dead {
		i := slices.IndexFunc(s.deadLetters, func(w privacyDelivery) bool { return sha256.Sum256(w.body) == d.SHA256 })
		if i < 0 {
			t.Errorf("dead letter #%d: SHA-256 %x is not that of a body delivered", d.Seq, d.SHA256)
			continue
		}
		w := s.deadLetters[i]
		if d.Deliveries != 2 {
			t.Errorf("dead letter #%d (%s): %d deliveries, want 2", d.Seq, w.file, d.Deliveries)
		}
		switch {
		case w.notJSON && string(d.Body) != "null":
			t.Errorf("dead letter #%d (%s): body %.80q…, want null", d.Seq, w.file, d.Body)
		case !w.notJSON && (bytes.Equal(d.Body, w.body) || !json.Valid(d.Body)):
			t.Errorf("dead letter #%d (%s): body %.80q…, want it scrubbed and still JSON", d.Seq, w.file, d.Body)
		}
	}
}

// checkConflicts wants every conflicting body kept once, its second
// delivery counted, with the SHA-256 of the body as received and a body
// that is no longer that one.
func (s *privacyScenario) checkConflicts(t *testing.T, db *store.DB) {
	t.Helper()
	kept, err := db.Conflicts(ctx, engine.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(kept), len(s.conflicts); got != want {
		t.Errorf("%d conflicts stored, want %d", got, want)
	}
	for _, c := range kept {
		i := slices.IndexFunc(s.conflicts, func(w privacyDelivery) bool { return sha256.Sum256(w.body) == c.SHA256 })
		if i < 0 {
			t.Errorf("conflict #%d: SHA-256 %x is not that of a conflicting body delivered", c.Seq, c.SHA256)
			continue
		}
		w := s.conflicts[i]
		if c.EventID != w.eventID || c.Deliveries != 2 {
			t.Errorf("conflict #%d (%s): event %s, %d deliveries; want %s, 2", c.Seq, w.file, c.EventID, c.Deliveries, w.eventID)
		}
		if bytes.Equal(c.Body, w.body) || !json.Valid(c.Body) {
			t.Errorf("conflict #%d (%s): body %.80q…, want it scrubbed and still JSON", c.Seq, w.file, c.Body)
		}
	}
}

// checkProjection wants the inquiry's projection to be the fold of its
// stored log, redacted by a direct redaction, which keeps the
// reference-id. An account redaction forgets the inquiry's data but does
// not redact it (Persona sends inquiry.redacted for that).
func (s *privacyScenario) checkProjection(t *testing.T, db *store.DB) {
	t.Helper()
	inq := mustInquiry(t, db, privacyInquiry)
	wantRef := privacyReference
	if s.c.account {
		wantRef = ""
	}
	if inq.Redacted == s.c.account || inq.ReferenceID != wantRef || len(inq.Tags) != 0 {
		t.Errorf("projection: redacted %v, reference-id %q, tags %q; want redacted %v, reference-id %q, no tags",
			inq.Redacted, inq.ReferenceID, inq.Tags, !s.c.account, wantRef)
	}
	if got, want := jsonOf(t, inq), jsonOf(t, foldOfLog(t, db, privacyInquiry, engine.Policy{})); got != want {
		t.Errorf("projection is not the fold of the stored log:\ngot  %s\nwant %s", got, want)
	}
}

// checkDisk reports every personal value found in the database file, its
// WAL or its shared memory, with the rows that hold it, and in a stored
// body decoded: a compressed body may hold a value that no raw byte
// shows.
func (s *privacyScenario) checkDisk(t *testing.T, path, when string) {
	t.Helper()
	type leak struct {
		file string
		needleAt
	}
	var leaks []leak
	for _, file := range diskFiles(path) {
		for _, at := range s.needles.find(readDiskFile(t, file)) {
			leaks = append(leaks, leak{filepath.Base(file), at})
		}
	}
	slices.SortFunc(leaks, func(a, b leak) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.offset, b.offset))
	})
	const detailed = 40
	var rest []string
	for i, l := range leaks {
		if i >= detailed {
			rest = append(rest, fmt.Sprintf("%s:%q", l.file, l.value.raw))
			continue
		}
		t.Errorf("%s: %s holds %q at offset %d (a personal value of %s); %s",
			when, l.file, l.bytes, l.offset, l.value.file, s.whereStored(t, path, l.bytes))
	}
	if len(rest) > 0 {
		t.Errorf("%s: and %d more: %s", when, len(rest), strings.Join(rest, " "))
	}
	leaked := 0
	for _, b := range storedBodies(t, path) {
		for _, at := range s.needles.find(b.body) {
			if leaked++; leaked <= detailed {
				t.Errorf("%s: %s holds %q (a personal value of %s)", when, b.where, at.bytes, at.value.file)
			}
		}
	}
	if leaked > detailed {
		t.Errorf("%s: and %d more personal values in decoded bodies", when, leaked-detailed)
	}
}

// checkForgottenBodies reads every stored body of a forgotten object
// (events and conflicts, decoded) and every dead letter: none may hold a
// value of the forgotten bodies, not
// even one that the bodies of an object that stays (the account, after a
// direct inquiry redaction) hold too, which checkDisk cannot look for.
func (s *privacyScenario) checkForgottenBodies(t *testing.T, path string) {
	t.Helper()
	file := map[string]string{}
	for _, d := range s.events {
		file[d.eventID] = d.file
	}
	for _, b := range storedBodies(t, path) {
		if b.object != "" && !s.forgotten[b.object] {
			continue
		}
		for _, at := range s.inBodies.find(b.body) {
			t.Errorf("%s (%s) holds %q (a value of %s)", b.where, file[b.eventID], at.bytes, at.value.file)
		}
	}
}

// whereStored says which rows hold b.
func (s *privacyScenario) whereStored(t *testing.T, path string, b []byte) string {
	t.Helper()
	rows, err := s.storedRows(path, b)
	switch {
	case err != nil:
		return "cannot tell which row: " + err.Error()
	case len(rows) == 0:
		return "in no live row: a freed page or an old WAL frame"
	}
	return "in " + strings.Join(rows, ", ")
}

// storedRows returns the rows that hold b, read on a connection of its
// own: stored bodies decoded (with the file an event comes from), dead
// letters' reasons and projections.
func (s *privacyScenario) storedRows(path string, b []byte) ([]string, error) {
	file := map[string]string{}
	for _, d := range s.events {
		file[d.eventID] = d.file
	}
	bodies, err := storedBodiesErr(path)
	if err != nil {
		return nil, err
	}
	var where []string
	for _, sb := range bodies {
		if !bytes.Contains(sb.body, b) {
			continue
		}
		row := sb.where
		if f := file[sb.eventID]; f != "" {
			row += " from " + f
		}
		where = append(where, row)
	}
	err = readOnlyErr(path, func(q *sql.DB) error {
		r, err := q.Query(`
			SELECT 'dead_letters.reason #' || seq FROM dead_letters WHERE instr(CAST(reason AS BLOB), ?1) > 0
			UNION ALL SELECT 'inquiries.doc of ' || id FROM inquiries WHERE instr(CAST(doc AS BLOB), ?1) > 0`, b)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var row string
			if err := r.Scan(&row); err != nil {
				return err
			}
			where = append(where, row)
		}
		return r.Err()
	})
	return where, err
}

// readOnly runs fn on a read-only connection of its own to path, closed
// before it returns, as another program would read the file.
func readOnly(tb testing.TB, path string, fn func(*sql.DB) error) {
	tb.Helper()
	if err := readOnlyErr(path, fn); err != nil {
		tb.Fatal(err)
	}
}

func readOnlyErr(path string, fn func(*sql.DB) error) error {
	q, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	q.SetMaxOpenConns(1)
	return errors.Join(fn(q), q.Close())
}
