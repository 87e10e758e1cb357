package store_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// TestMigrateV4RefoldsAtFullPrecision opens a version 4 file whose
// projection a version 4 personad folded wrong: two events 0.4 ms apart,
// the later stored first, the earlier applied on top of the projection
// read back after a restart, with its times truncated to the millisecond.
// The migration to version 5 must fold it again into the fold of its log,
// record the change of last event, leave a file that verifies, and take
// conflicts from then on.
func TestMigrateV4RefoldsAtFullPrecision(t *testing.T) {
	const id = "inq_v4"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	late := bodyAt(t, storetest.Body("evt_late", engine.EventStarted, id, engine.StatusPending, t0), "2024-03-15T18:30:00.0006Z")
	early := bodyAt(t, storetest.Body("evt_early", engine.EventCreated, id, engine.StatusCreated, t0), "2024-03-15T18:30:00.0002Z")
	path := filepath.Join(t.TempDir(), "personad.db")
	writeV4(t, path, id, late, early)

	db := openPath(t, path, store.Options{})
	var version int
	readOnly(t, path, func(q *sql.DB) error { return q.QueryRow(`PRAGMA user_version`).Scan(&version) })
	if version != store.SchemaVersion() {
		t.Fatalf("user_version = %d after Open, want %d", version, store.SchemaVersion())
	}
	want := jsonOf(t, foldOfLog(t, db, id, engine.Policy{}))
	if got := jsonOf(t, mustInquiry(t, db, id)); got != want {
		t.Errorf("projection after the migration:\ngot  %s\nwant %s", got, want)
	}
	if inq := mustInquiry(t, db, id); inq.LastEventID != "evt_late" || len(inq.Anomalies) != 0 ||
		!inq.UpdatedAt.Equal(t0.Add(600*time.Microsecond)) {
		t.Errorf("projection after the migration: %s; want evt_late last at 18:30:00.0006, no anomaly", jsonOf(t, inq))
	}
	mustVerify(t, db, engine.Policy{})

	other := bodyAt(t, storetest.Body("evt_late", engine.EventApproved, id, engine.StatusApproved, t0), "2024-03-15T18:30:00.0006Z")
	if res := ingest(t, engine.New(db, engine.Policy{}), other); !res.Duplicate || !res.Conflict {
		t.Errorf("conflicting body after the migration: %+v, want a duplicate and a conflict", res)
	}
	if inq := mustInquiry(t, db, id); len(inq.Anomalies) != 1 || inq.Anomalies[0].Kind != engine.AnomalyConflictingRedelivery {
		t.Errorf("anomalies %+v, want one conflicting_redelivery", inq.Anomalies)
	}
	mustVerify(t, db, engine.Policy{})
}

// writeV4 writes a version 4 database as the store of version 4 did: the
// schema of migrations 0001 to 0004, the bodies received a millisecond
// apart in the order given with their hash chain, and the inquiry's
// projection as a version 4 store left it when a restart came between
// them: each applied on top of the one before, times to the millisecond.
func writeV4(tb testing.TB, path, id string, bodies ...[]byte) {
	tb.Helper()
	raw := rawDB(tb, path, "_pragma=journal_mode(WAL)")
	for _, name := range []string{"0001_init.sql", "0002_related_inquiry.sql", "0003_related_inquiry_immutable.sql", "0004_forget_and_chain.sql"} {
		script, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			tb.Fatal(err)
		}
		mustExec(tb, raw, string(script))
	}
	mustExec(tb, raw, "PRAGMA user_version = 4; PRAGMA application_id = 1885696627") // "pers"
	inq := &engine.Inquiry{ID: id}
	var prev [32]byte
	received := time.Date(2024, 3, 16, 9, 0, 0, 0, time.UTC)
	for i, body := range bodies {
		ev, err := engine.Parse(body)
		if err != nil {
			tb.Fatal(err)
		}
		seq, sum, at := int64(i+1), sha256.Sum256(body), received.Add(time.Duration(i)*time.Millisecond).UnixMilli()
		h := sha256.New()
		h.Write(prev[:])
		binary.Write(h, binary.BigEndian, seq)
		h.Write([]byte(ev.ID))
		h.Write(sum[:])
		binary.Write(h, binary.BigEndian, at)
		h.Sum(prev[:0])
		step := inq.Apply(ev, engine.Policy{})
		if _, err := raw.Exec(`INSERT INTO events (seq, event_id, name, object_type, object_id, created_at, received_at,
			attempts_made, deliveries, outcome, sha256, body, chain) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?, ?, ?)`,
			seq, ev.ID, ev.Name, ev.ObjectType, ev.ObjectID, ev.CreatedAt.UnixMilli(), at, string(step.Outcome), sum[:], body, prev[:]); err != nil {
			tb.Fatal(err)
		}
		// What a version 4 store read back after a restart.
		inq.UpdatedAt, inq.CreatedAt = inq.UpdatedAt.Truncate(time.Millisecond), inq.CreatedAt.Truncate(time.Millisecond)
	}
	doc, err := inq.MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO inquiries (id, status, decision, redacted, updated_at, anomalies, doc) VALUES (?, ?, NULL, 0, ?, ?, ?)`,
		id, string(inq.Status), inq.UpdatedAt.UnixMilli(), len(inq.Anomalies), string(doc)); err != nil {
		tb.Fatal(err)
	}
	mustExec(tb, raw, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := raw.Close(); err != nil {
		tb.Fatal(err)
	}
}
