package store_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// rawDB opens path with the driver directly, as another program would.
func rawDB(tb testing.TB, path string, query string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?"+query)
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustExec(tb testing.TB, db *sql.DB, query string) {
	tb.Helper()
	if _, err := db.Exec(query); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func TestMigrateEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and reopen a migrated file
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := db.Stats(ctx); err != nil {
			t.Errorf("Stats on a migrated file: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var version int
	if err := rawDB(t, path, "").QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if got, want := version, store.SchemaVersion(); got != want {
		t.Errorf("user_version = %d, want %d", got, want)
	}
}

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
		words   []string // the message must name these
	}{{
		name: "newer schema",
		prepare: func(t *testing.T, path string) {
			openPath(t, path, store.Options{}).Close()
			mustExec(t, rawDB(t, path, ""), "PRAGMA user_version = 99")
		},
		want:  store.ErrNewerSchema,
		words: []string{"99", strconv.Itoa(store.SchemaVersion())},
	}, {
		name: "random bytes",
		prepare: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(rand.Text()+rand.Text()+strings.Repeat("x", 4096)), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		want: store.ErrNotPersonad,
	}, {
		name: "another application's database",
		prepare: func(t *testing.T, path string) {
			mustExec(t, rawDB(t, path, ""), "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT)")
		},
		want:  store.ErrNotPersonad,
		words: []string{"another application"},
	}, {
		name: "versioned database of another application",
		prepare: func(t *testing.T, path string) {
			db := rawDB(t, path, "")
			mustExec(t, db, "CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
			mustExec(t, db, "PRAGMA user_version = 1")
		},
		want:  store.ErrNotPersonad,
		words: []string{"application_id"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			tt.prepare(t, path)
			for name, open := range map[string]func() (*store.DB, error){
				"Open":         func() (*store.DB, error) { return store.Open(path, store.Options{}) },
				"OpenReadOnly": func() (*store.DB, error) { return store.OpenReadOnly(path) },
			} {
				db, err := open()
				if err == nil {
					db.Close()
					t.Fatalf("%s succeeded, want %v", name, tt.want)
				}
				t.Logf("%s: %v", name, err)
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: err = %v, want %v", name, err, tt.want)
				}
				for _, w := range tt.words {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q does not mention %q", name, err, w)
					}
				}
			}
		})
	}
}

func TestOpenReadOnlyNeedsASchema(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.OpenReadOnly(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("OpenReadOnly of a missing file succeeded")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenReadOnly(empty); !errors.Is(err, store.ErrNotPersonad) {
		t.Errorf("OpenReadOnly of an empty file: err = %v, want ErrNotPersonad", err)
	}
}

// TestLocked holds the write lock on a second connection, as another
// process would, and wants Open to give up with ErrLocked after its busy
// timeout, while a read-only open keeps working.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	ingest(t, eng, fixture(t, "inquiry.started.json"))
	db.Close()

	other := rawDB(t, path, "_txlock=immediate")
	holder, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()

	start := time.Now()
	_, err = store.Open(path, store.Options{BusyTimeout: 200 * time.Millisecond})
	t.Log(err)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open of a locked file: err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open gave up after %v, want about the busy timeout", d)
	}

	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly while locked: %v", err)
	}
	defer ro.Close()
	if _, err := ro.GetInquiry(ctx, fixtureInquiry); err != nil {
		t.Errorf("read while locked: %v", err)
	}
}

func TestCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	for _, b := range g.bodies(50) {
		ingest(t, eng, b)
	}
	db.Close()

	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	for page := int64(2); page < 12; page += 3 {
		if _, err := f.WriteAt(garbage, page*4096); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	_, err = store.Open(path, store.Options{})
	t.Log(err)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Open of a corrupt file: err = %v, want ErrCorrupt", err)
	}
}

// TestMigrateRelatesEvents opens a version 1 database, written before
// events named their related inquiry, and checks that the migration fills
// related_inquiry_id in, scrubs the related events of an inquiry redacted
// already (down to the bytes of the file, even when a reader of another
// process delays the checkpoint), leaves the others as received, and then
// keeps the column immutable.
func TestMigrateRelatesEvents(t *testing.T) {
	const redactedID, otherID = "inq_kT4xVnR2bPmYwL9sTgD3cExZ", "inq_other"
	for _, reader := range []bool{false, true} {
		t.Run(fmt.Sprintf("reader=%v", reader), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v1.db")
			verification, otherSession := writeV1(t, path, redactedID, otherID)
			if reader {
				// Another process reading the file as it was keeps Open's
				// checkpoint from completing.
				snapshot, err := rawDB(t, path, "mode=ro").Begin()
				if err != nil {
					t.Fatal(err)
				}
				var n int
				if err := snapshot.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				defer snapshot.Rollback()
				db := openPath(t, path, store.Options{BusyTimeout: 100 * time.Millisecond})
				if len(findPII(t, path)) == 0 {
					t.Fatal("the reader did not delay the checkpoint: this case tests nothing")
				}
				snapshot.Rollback()
				scanForPIIWithin(t, path, 5*time.Second, "while open, once the reader left")
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}

			db := openPath(t, path, store.Options{})
			scanForPII(t, path, "after the migration")
			recs, err := db.RelatedEvents(ctx, redactedID)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].ObjectType != "verification/government-id" || recs[0].SHA256 != sha256.Sum256(verification) {
				t.Fatalf("related events of the redacted inquiry: %+v, want its verification", recs)
			}
			recs, err = db.RelatedEvents(ctx, otherID)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || !bytes.Equal(recs[0].Body, otherSession) {
				t.Errorf("related events of the other inquiry: %+v, want its session as received", recs)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			raw := rawDB(t, path, "")
			var unrelated int
			if err := raw.QueryRow(`SELECT count(*) FROM events WHERE object_type = 'account' AND related_inquiry_id IS NULL`).Scan(&unrelated); err != nil || unrelated != 1 {
				t.Errorf("the account event: %d unrelated (%v), want 1", unrelated, err)
			}
			if _, err := raw.Exec(`UPDATE events SET related_inquiry_id = 'inq_x'`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("updating related_inquiry_id: %v, want the append-only trigger's refusal", err)
			}
		})
	}
}

// writeV1 writes a version 1 database in WAL mode, as the store did:
// redactedID is redacted
// and its verification was stored as received, as version 1 did; otherID
// has a session and there is an account event. Only the verification
// holds the fixture's PII. It returns the verification and the session.
func writeV1(t *testing.T, path, redactedID, otherID string) (verification, otherSession []byte) {
	t.Helper()
	v1, err := os.ReadFile(filepath.Join("migrations", "0001_init.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// secure_delete, as version 1 of the store wrote with: otherwise
	// SQLite leaves stale bytes in pages it rebalances.
	raw := rawDB(t, path, "_pragma=journal_mode(WAL)&_pragma=secure_delete(ON)")
	mustExec(t, raw, string(v1))
	mustExec(t, raw, "PRAGMA user_version = 1; PRAGMA application_id = 1885696627") // "pers"
	for _, inq := range []*engine.Inquiry{
		{ID: redactedID, Status: engine.StatusApproved, Redacted: true, EventCount: 1},
		{ID: otherID, Status: engine.StatusPending, EventCount: 1},
	} {
		doc, err := inq.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO inquiries (id, status, redacted, updated_at, anomalies, doc) VALUES (?, ?, ?, 0, 0, ?)`,
			inq.ID, string(inq.Status), inq.Redacted, string(doc)); err != nil {
			t.Fatal(err)
		}
	}
	verification = fixture(t, "verification.passed.json")
	otherSession = anotherPerson(bytes.ReplaceAll(fixture(t, "inquiry-session.started.json"), []byte(redactedID), []byte(otherID)))
	for _, body := range [][]byte{verification, otherSession, anotherPerson(fixture(t, "account.created.json"))} {
		ev, err := engine.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		if _, err := raw.Exec(`INSERT INTO events (event_id, name, object_type, object_id, created_at, received_at,
			attempts_made, deliveries, outcome, sha256, body) VALUES (?, ?, ?, ?, 0, 0, 1, 1, 'unknown', ?, ?)`,
			ev.ID, ev.Name, ev.ObjectType, ev.ObjectID, sum[:], body); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, raw, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	return verification, otherSession
}

// anotherPerson replaces every byte of the fixture's PII in body with a
// '1', which keeps strings strings and numbers numbers.
func anotherPerson(body []byte) []byte {
	for _, pii := range fixturePII {
		body = bytes.ReplaceAll(body, []byte(pii), bytes.Repeat([]byte("1"), len(pii)))
	}
	return body
}
