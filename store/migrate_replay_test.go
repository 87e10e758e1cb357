package store_test

import (
	"crypto/sha256"
	"errors"
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

// TestMigrationFilesOfConstants: each migration a constant names is the
// file of that number (at a merge, both are renumbered together).
func TestMigrationFilesOfConstants(t *testing.T) {
	for _, tc := range []struct {
		suffix  string
		version int
	}{
		{"_dead_letter_replay.sql", store.VersionDeadLetterReplay},
		{"_event_source.sql", store.VersionEventSource},
		{"_encoded_bodies.sql", store.VersionBodiesEncoded},
	} {
		names, err := filepath.Glob(filepath.Join("migrations", "*"+tc.suffix))
		if err != nil || len(names) != 1 {
			t.Errorf("migration files *%s: %v (%v), want one", tc.suffix, names, err)
			continue
		}
		n, _, _ := strings.Cut(filepath.Base(names[0]), "_")
		if v, err := strconv.Atoi(n); err != nil || v != tc.version {
			t.Errorf("%s is version %s, the constant says %d", names[0], n, tc.version)
		}
	}
}

// TestMigrateDeadLettersToReplayMark opens a file at the version before
// the replay mark holding two dead letters, one a body that this personad
// can read: after the migration both are listed as not replayed, the one
// that parses replays into an event, and the other stays as it was.
func TestMigrateDeadLettersToReplayMark(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	prev := store.VersionDeadLetterReplay - 1
	raw := rawDB(t, path, "_pragma=journal_mode(WAL)")
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		n, _, _ := strings.Cut(filepath.Base(name), "_")
		if v, _ := strconv.Atoi(n); v > prev {
			continue
		}
		script, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, raw, string(script))
	}
	mustExec(t, raw, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = 1885696627", prev)) // "pers"
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	readable := storetest.Body("evt_dl", engine.EventApproved, "inq_dl", engine.StatusApproved, t0)
	unreadable := []byte(`{"data": "not an event"}`)
	for i, body := range [][]byte{readable, unreadable} {
		sum := sha256.Sum256(body)
		if _, err := raw.Exec(`INSERT INTO dead_letters (received_at, reason, sha256, body, deliveries) VALUES (?, 'old reason', ?, ?, 2)`,
			t0.Add(time.Duration(i)*time.Second).UnixMilli(), sum[:], body); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, raw, "PRAGMA wal_checkpoint(TRUNCATE)")
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	page, next, err := eng.DeadLetters(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || next != 0 || page[0].Seq != 2 || page[1].Seq != 1 || page[0].Replayed() || page[1].Replayed() || page[1].Deliveries != 2 {
		t.Fatalf("dead letters after the migration: %+v (next %d), want 2 then 1, neither replayed", page, next)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := eng.Replay(t.Context(), 1, at)
	if err != nil || res.EventID != "evt_dl" || res.After != engine.StatusApproved {
		t.Fatalf("replay of the readable dead letter: %+v, %v", res, err)
	}
	if _, err := eng.Replay(t.Context(), 2, at); !errors.Is(err, engine.ErrMalformed) {
		t.Errorf("replay of the unreadable dead letter: %v, want a parse error", err)
	}
	if d, err := eng.DeadLetter(t.Context(), 2); err != nil || d.Replayed() || d.Reason != "old reason" {
		t.Errorf("unreadable dead letter after its replay: %+v, %v, want it as it was", d, err)
	}
	if inq := mustInquiry(t, db, "inq_dl"); inq.Status != engine.StatusApproved {
		t.Errorf("replayed inquiry status %s, want approved", inq.Status)
	}
	mustVerify(t, db, engine.Policy{})
}
