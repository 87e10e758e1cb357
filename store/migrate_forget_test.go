package store_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// The fixture inquiry's account and verification, and the reference-id
// the inquiry and the account carry.
const (
	fixtureAccount      = "act_fJ8mQpDLrYvNcBzWk5HsAxRy"
	fixtureVerification = "ver_X3kHmRqV9YpZ2nBwL5tGdJcE"
	fixtureReference    = "user-1234"
)

// v3Event is an event as a version 3 store kept it: the body as received,
// whose SHA-256 it stored, and the body it stored, the same or scrubbed.
type v3Event struct {
	received, stored []byte
}

// asReceived is an event version 3 stored as it arrived.
func asReceived(body []byte) v3Event { return v3Event{body, body} }

// scrubbed is an event version 3 stored scrubbed, as it did the events of
// a redacted inquiry.
func scrubbed(tb testing.TB, body []byte) v3Event {
	tb.Helper()
	s, err := engine.Scrub(body)
	if err != nil {
		tb.Fatal(err)
	}
	return v3Event{body, s}
}

// writeV3Log writes a version 3 database as the store of version 3 did:
// the schema of migrations 0001 to 0003, the events received a millisecond
// apart in the order given, and the projections of their inquiries folded
// from the stored bodies.
func writeV3Log(tb testing.TB, path string, events []v3Event) {
	tb.Helper()
	raw := rawDB(tb, path, "_pragma=journal_mode(WAL)&_pragma=secure_delete(ON)")
	for _, name := range []string{"0001_init.sql", "0002_related_inquiry.sql", "0003_related_inquiry_immutable.sql"} {
		script, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			tb.Fatal(err)
		}
		mustExec(tb, raw, string(script))
	}
	mustExec(tb, raw, "PRAGMA user_version = 3; PRAGMA application_id = 1885696627") // "pers"
	folds := map[string][]*engine.Event{}
	received := time.Date(2024, 3, 16, 9, 0, 0, 0, time.UTC)
	for i, e := range events {
		ev, err := engine.Parse(e.received)
		if err != nil {
			tb.Fatal(err)
		}
		sum := sha256.Sum256(e.received)
		var related any
		if ev.RelatedInquiryID != "" {
			related = ev.RelatedInquiryID
		}
		if _, err := raw.Exec(`INSERT INTO events (event_id, name, object_type, object_id, related_inquiry_id, created_at,
			received_at, attempts_made, deliveries, outcome, sha256, body) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, 'applied', ?, ?)`,
			ev.ID, ev.Name, ev.ObjectType, ev.ObjectID, related, ev.CreatedAt.UnixMilli(),
			received.Add(time.Duration(i)*time.Millisecond).UnixMilli(), sum[:], e.stored); err != nil {
			tb.Fatal(err)
		}
		if ev.IsInquiry() {
			stored, err := engine.Parse(e.stored)
			if err != nil {
				tb.Fatal(err)
			}
			folds[ev.ObjectID] = append(folds[ev.ObjectID], stored)
		}
	}
	for id, events := range folds {
		inq, _ := engine.Fold(id, events, engine.Policy{})
		doc, err := inq.MarshalJSON()
		if err != nil {
			tb.Fatal(err)
		}
		var status, decision any
		if inq.Status != "" {
			status = string(inq.Status)
		}
		if inq.Decision != "" {
			decision = string(inq.Decision)
		}
		if _, err := raw.Exec(`INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, status, decision, inq.Redacted, inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc)); err != nil {
			tb.Fatal(err)
		}
	}
	mustExec(tb, raw, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := raw.Close(); err != nil {
		tb.Fatal(err)
	}
}

// accountRedaction is Persona's account.redacted for the fixture's
// account, made from its account.created: the body still holds the
// person, as Persona's may.
func accountRedaction(tb testing.TB) []byte {
	tb.Helper()
	body := fixture(tb, "account.created.json")
	for _, r := range [][2]string{
		{`"name": "account.created"`, `"name": "account.redacted"`},
		{`"created-at": "2024-03-15T18:30:30.100Z"`, `"created-at": "2024-03-16T08:00:00.100Z"`},
		{`"redacted-at": null`, `"redacted-at": "2024-03-16T08:00:00.000Z"`},
		{`"evt_ckZNxnMRgtf55bHl27ozUiwW"`, `"evt_accountRedacted0000000001"`},
	} {
		if bytes.Count(body, []byte(r[0])) != 1 {
			tb.Fatalf("account.created.json holds %q %d times, want once", r[0], bytes.Count(body, []byte(r[0])))
		}
		body = bytes.Replace(body, []byte(r[0]), []byte(r[1]), 1)
	}
	return body
}

// checkSums fails tb unless every stored body keeps the SHA-256 of a
// body as received.
func checkSums(tb testing.TB, stored []storedBody, events []v3Event) {
	tb.Helper()
	var want [][32]byte
	for _, e := range events {
		want = append(want, sha256.Sum256(e.received))
	}
	for _, b := range stored {
		if !slices.Contains(want, [32]byte(b.sum)) {
			tb.Errorf("%s: the stored SHA-256 is not that of a body as received", b.eventID)
		}
	}
}

// TestMigrateForgetsStoredRedactions opens version 3 databases that hold
// what the engine of version 4 forgets but version 3 did not: an
// account.redacted it stored and ignored, and a verification of a
// redacted inquiry that only the inquiry's events name. The migration's
// Go step must forget them as the engine would have, down to the bytes
// of the file, and leave projections that are the fold of the scrubbed
// log.
func TestMigrateForgetsStoredRedactions(t *testing.T) {
	bareVerification := storetest.WithoutRelationships(t, fixture(t, "verification.passed.json"))

	t.Run("account redaction stored and ignored", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "v3.db")
		events := []v3Event{
			asReceived(fixture(t, "account.created.json")),
			asReceived(fixture(t, "inquiry.created.json")),
			asReceived(fixture(t, "inquiry.started.json")),
			asReceived(bareVerification),
			asReceived(fixture(t, "inquiry.updated-tags.json")),
			asReceived(fixture(t, "inquiry.approved.json")),
			asReceived(accountRedaction(t)),
		}
		writeV3Log(t, path, events)
		before := mustInquiryAt(t, path, fixtureInquiry)
		if before.ReferenceID != fixtureReference || len(before.Tags) == 0 || before.AccountID != fixtureAccount {
			t.Fatalf("version 3 projection %+v: want the reference-id, tags and the account, or this case tests nothing", before)
		}

		db := openPath(t, path, store.Options{Policy: engine.Policy{}})
		stored := objectBodies(t, path, fixtureInquiry, fixtureVerification, fixtureAccount)
		if len(stored) != len(events) {
			t.Errorf("%d events of the inquiry, verification and account, want %d", len(stored), len(events))
		}
		checkNoValues(t, stored, append(slices.Clone(fixturePII), fixtureReference)...)
		checkSums(t, stored, events)
		inq := mustInquiry(t, db, fixtureInquiry)
		if inq.ReferenceID != "" || len(inq.Tags) != 0 || inq.Redacted || inq.Status != before.Status {
			t.Errorf("projection after the migration %+v; want status %s, not redacted, no reference-id or tags", inq, before.Status)
		}
		for _, id := range []string{fixtureAccount, fixtureInquiry, fixtureVerification} {
			if got := forgetting(t, db, id); got != engine.ForgetAll {
				t.Errorf("Forgetting(%s) = %v, want %v", id, got, engine.ForgetAll)
			}
		}
		mustVerify(t, db, engine.Policy{})
		scanForPII(t, path, "after the migration")
	})

	t.Run("redacted inquiry, verification never scrubbed", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "v3.db")
		events := []v3Event{
			scrubbed(t, fixture(t, "inquiry.created.json")),
			scrubbed(t, fixture(t, "inquiry.started.json")),
			asReceived(bareVerification),
			scrubbed(t, fixture(t, "inquiry.approved.json")),
			scrubbed(t, fixture(t, "inquiry.redacted.json")),
		}
		writeV3Log(t, path, events)
		if before := mustInquiryAt(t, path, fixtureInquiry); !before.Redacted {
			t.Fatalf("version 3 projection %+v is not redacted", before)
		}
		if len(findPII(t, path)) == 0 {
			t.Fatal("the verification's body as received is not in the file: this case tests nothing")
		}

		db := openPath(t, path, store.Options{Policy: engine.Policy{}})
		ver := objectBodies(t, path, fixtureVerification)
		if len(ver) != 1 {
			t.Fatalf("%d events of the verification, want 1", len(ver))
		}
		checkNoValues(t, objectBodies(t, path, fixtureInquiry, fixtureVerification), fixturePII...)
		checkSums(t, ver, events)
		inq := mustInquiry(t, db, fixtureInquiry)
		if !inq.Redacted || inq.ReferenceID != fixtureReference {
			t.Errorf("projection after the migration %+v; want it redacted, keeping its reference-id", inq)
		}
		if got := forgetting(t, db, fixtureVerification); got != engine.ForgetKeepReference {
			t.Errorf("Forgetting(%s) = %v, want %v", fixtureVerification, got, engine.ForgetKeepReference)
		}
		mustVerify(t, db, engine.Policy{})
		scanForPII(t, path, "after the migration")
	})
}

// mustInquiryAt reads a stored projection from the database at path
// directly, whatever its schema version.
func mustInquiryAt(tb testing.TB, path, id string) *engine.Inquiry {
	tb.Helper()
	raw := rawDB(tb, path, "mode=ro")
	defer raw.Close()
	var doc []byte
	if err := raw.QueryRow(`SELECT doc FROM inquiries WHERE id = ?`, id).Scan(&doc); err != nil {
		tb.Fatal(err)
	}
	inq := new(engine.Inquiry)
	if err := inq.UnmarshalJSON(doc); err != nil {
		tb.Fatal(err)
	}
	return inq
}
