package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

const verifyInquiry = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"

// verifyFixtures are ingested one by one, so that the i-th is event #i+1.
var verifyFixtures = []string{
	"inquiry.created.json", "inquiry.started.json", "verification.passed.json",
	"inquiry.completed.json", "inquiry-session.started.json", "inquiry.approved.json",
}

// writeVerifyDB writes a database holding verifyFixtures and returns its
// path and the head personad verify prints for it.
func writeVerifyDB(t *testing.T) (path, head string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(db, engine.Policy{})
	for _, f := range verifyFixtures {
		if _, err := eng.Ingest(context.Background(), engine.Delivery{Body: readFixture(t, f), ReceivedAt: time.Now(), AttemptsMade: 1}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := db.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, h.String()
}

// tamper opens the file at path with the driver, as someone with the file
// could, drops the triggers that keep the log append-only and runs edit.
func tamper(t *testing.T, path string, edit func(raw *sql.DB) error) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`DROP TRIGGER events_append_only; DROP TRIGGER events_immutable; DROP TRIGGER events_chain_immutable`); err != nil {
		t.Fatal(err)
	}
	if err := edit(raw); err != nil {
		t.Fatal(err)
	}
}

// execSQL returns an edit that runs queries in order.
func execSQL(queries ...string) func(*sql.DB) error {
	return func(raw *sql.DB) error {
		for _, q := range queries {
			if _, err := raw.Exec(q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}
}

// flipHashByte returns an edit that inverts one byte of the stored body
// hash of the event at seq.
func flipHashByte(seq int64) func(*sql.DB) error {
	return func(raw *sql.DB) error {
		var sum []byte
		if err := raw.QueryRow(`SELECT sha256 FROM events WHERE seq = ?`, seq).Scan(&sum); err != nil {
			return err
		}
		sum[9] ^= 0xff
		_, err := raw.Exec(`UPDATE events SET sha256 = ? WHERE seq = ?`, sum, seq)
		return err
	}
}

// TestVerifyCommand runs personad verify on an intact database and on copies
// tampered with in each way the issue names, and wants exit 0 with the
// head, or exit 1 naming the first broken seq or mismatched inquiry.
func TestVerifyCommand(t *testing.T) {
	base, head := writeVerifyDB(t)
	seq, link, _ := strings.Cut(head, ":")
	if seq != fmt.Sprint(len(verifyFixtures)) || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(link) {
		t.Fatalf("head %q, want %d:<64 hex digits>", head, len(verifyFixtures))
	}
	wrongLink := "0" + link[1:]
	if link[0] == '0' {
		wrongLink = "1" + link[1:]
	}
	tests := []struct {
		name   string
		tamper func(*sql.DB) error
		args   []string
		code   int
		stdout string   // a substring of stdout
		stderr []string // substrings of stderr
	}{
		{name: "intact", code: 0, stdout: fmt.Sprintf("ok: 6 events, 1 inquiries; head %s\n", head)},
		{name: "right head", args: []string{"-head", head}, code: 0, stdout: "anchored head " + head + " holds"},
		{name: "flipped byte of a body hash", tamper: flipHashByte(3), code: 1, stderr: []string{"Error: ", "breaks at event #3", "Try: "}},
		{name: "deleted middle row", tamper: execSQL(`DELETE FROM events WHERE seq = 4`),
			code: 1, stderr: []string{"breaks at event #4", "missing", "Try: restore"}},
		{name: "two rows reordered", tamper: execSQL(
			`UPDATE events SET seq = -1 WHERE seq = 2`, `UPDATE events SET seq = 2 WHERE seq = 5`, `UPDATE events SET seq = 5 WHERE seq = -1`,
		), code: 1, stderr: []string{"breaks at event #2"}},
		{name: "edited projection", tamper: execSQL(`UPDATE inquiries SET doc = json_set(doc, '$.decision', 'declined')`),
			code: 1, stderr: []string{"inquiry " + verifyInquiry, "differs from the fold", "Try: ", "personad rebuild"}},
		{name: "wrong head", args: []string{"-head", seq + ":" + wrongLink}, code: 1, stderr: []string{"breaks at event #6", "anchored head"}},
		{name: "head past the end", args: []string{"-head", "7:" + link}, code: 1, stderr: []string{"breaks at event #7", "ends at #6"}},
		{name: "malformed head", args: []string{"-head", "6:abc"}, code: 2, stderr: []string{"-head", "Try: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			b, err := os.ReadFile(base)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.tamper != nil {
				tamper(t, path, tt.tamper)
			}
			code, out, errOut := runCLI(t, append([]string{"verify", "-db", path}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.stdout) {
				t.Errorf("exit %d, stdout %q; want %d and %q (stderr %q)", code, out, tt.code, tt.stdout, errOut)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not mention %q", errOut, w)
				}
			}
			if tt.code == 0 && errOut != "" {
				t.Errorf("stderr %q, want nothing", errOut)
			}
		})
	}
	if code, _, errOut := runCLI(t, "verify", "-db", filepath.Join(t.TempDir(), "missing.db")); code != 1 || errOut == "" {
		t.Errorf("missing database: exit %d %q", code, errOut)
	}
}

// TestAuditHeadEndToEnd ingests through the real daemon and wants GET
// /v1/audit/head to name the last event and the link personad verify
// prints for the file, while the daemon serves it.
func TestAuditHeadEndToEnd(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	for _, f := range verifyFixtures {
		if r := d.post(readFixture(t, f), nil); r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", f, r.code, r.raw)
		}
	}
	r := d.get("/v1/audit/head")
	if r.code != http.StatusOK || r.body["seq"] != float64(len(verifyFixtures)) {
		t.Fatalf("/v1/audit/head: %d %s, want seq %d", r.code, r.raw, len(verifyFixtures))
	}
	head := fmt.Sprintf("%v:%v", r.body["seq"], r.body["chain"])
	code, out, errOut := runCLI(t, "verify", "-db", d.dbPath, "-head", head)
	if code != 0 || !strings.Contains(out, "; head "+head+";") {
		t.Errorf("verify while serving: exit %d %q %q, want head %s", code, out, errOut, head)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+"/v1/audit/head", nil)
	if r := send(t, req); r.code != http.StatusUnauthorized || r.errCode() != server.CodeUnauthorized {
		t.Errorf("/v1/audit/head without a token: %d %s, want 401", r.code, r.raw)
	}
}
