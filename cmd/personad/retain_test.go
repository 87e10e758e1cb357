package main

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

const retainInquiry = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"

// oldAndNew writes a database holding two events of the fixture inquiry
// received 100 days ago and one received now, and returns its path and the
// bodies as sent, by event id.
func oldAndNew(t *testing.T) (path string, sent map[string][]byte, recent string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(db, engine.Policy{})
	sent = map[string][]byte{}
	old := time.Now().Add(-100 * 24 * time.Hour)
	for i, name := range []string{"inquiry.created.json", "inquiry.started.json", "inquiry.completed.json"} {
		at := old
		if i == 2 {
			at = time.Now()
		}
		body := readFixture(t, name)
		res, err := eng.Ingest(context.Background(), engine.Delivery{Body: body, ReceivedAt: at, AttemptsMade: 1})
		if err != nil {
			t.Fatal(err)
		}
		sent[res.EventID], recent = body, res.EventID
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path, sent, recent
}

// checkRetained checks that the old events' bodies lost the fixture's
// name and the recent one is as sent; with wait, it polls until the old
// ones are scrubbed.
func checkRetained(t *testing.T, db engine.Reader, sent map[string][]byte, recent string, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		recs, err := db.Events(context.Background(), retainInquiry)
		if err != nil {
			t.Fatal(err)
		}
		var problems []string
		for _, r := range recs {
			switch scrubbed := !bytes.Contains(r.Body, []byte("Jane")); {
			case r.EventID == recent && !bytes.Equal(r.Body, sent[r.EventID]):
				problems = append(problems, r.EventID+": the recent body changed")
			case r.EventID != recent && !scrubbed:
				problems = append(problems, r.EventID+": the old body still names Jane")
			}
		}
		if len(recs) != len(sent) {
			problems = append(problems, strconv.Itoa(len(recs))+" events stored")
		}
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", wait, strings.Join(problems, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRetainCommand(t *testing.T) {
	path, sent, recent := oldAndNew(t)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"no -older-than", []string{"retain", "-db", path}},
		{"zero", []string{"retain", "-db", path, "-older-than", "0"}},
		{"negative", []string{"retain", "-db", path, "-older-than", "-1h"}},
		{"not a duration", []string{"retain", "-db", path, "-older-than", "90d"}},
		{"an argument", []string{"retain", "-db", path, "-older-than", "1h", "extra"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, errOut := runCLI(t, tt.args...); code != 2 || !strings.Contains(errOut, "Error: ") {
				t.Errorf("exit %d, %q; want 2 and an error", code, errOut)
			}
		})
	}
	if code, _, errOut := runCLI(t, "retain", "-db", path); !strings.Contains(errOut, "Try: personad retain -db "+path+" -older-than 2160h") {
		t.Errorf("no -older-than: exit %d, %q; want a hint", code, errOut)
	}
	if code, _, errOut := runCLI(t, "retain", "-db", filepath.Join(t.TempDir(), "missing.db"), "-older-than", "1h"); code != 1 || !strings.Contains(errOut, "Try:") {
		t.Errorf("missing database: exit %d %q", code, errOut)
	}

	code, out, errOut := runCLI(t, "retain", "-db", path, "-older-than", "2160h")
	if code != 0 || !strings.Contains(out, "scrubbed 2 of 2 event bodies, 0 of 0 dead letters and 0 of 0 conflicting bodies received before ") {
		t.Fatalf("retain: exit %d %q %q", code, out, errOut)
	}
	db, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	checkRetained(t, db, sent, recent, 0)
	db.Close()
	if code, out, _ := runCLI(t, "retain", "-db", path, "-older-than", "2160h"); code != 0 || !strings.Contains(out, "scrubbed 0 of 0 event bodies") {
		t.Errorf("second retain: exit %d %q, want nothing to do", code, out)
	}
}

func TestRetainInterval(t *testing.T) {
	for _, tt := range []struct{ retain, want time.Duration }{
		{time.Millisecond, time.Minute},
		{30 * time.Minute, 3 * time.Minute},
		{2160 * time.Hour, time.Hour},
	} {
		if got := retainInterval(tt.retain); got != tt.want {
			t.Errorf("retainInterval(%v) = %v, want %v", tt.retain, got, tt.want)
		}
	}
}

// TestServeRetainsBodies starts the daemon on a database with old events:
// its first retention pass scrubs them, logs counts and no personal data,
// and shutdown does not wait for the next pass.
func TestServeRetainsBodies(t *testing.T) {
	path, sent, recent := oldAndNew(t)
	if code, _, errOut := runCLI(t, "serve", "-retain-bodies", "-1h"); code != 2 || !strings.Contains(errOut, "Try: -retain-bodies") {
		t.Errorf("negative -retain-bodies: exit %d %q", code, errOut)
	}
	d := startDaemon(t, defaultEnv(), "-db", path, "-retain-bodies", "2160h")
	checkRetained(t, d.db, sent, recent, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.logs.String(), `"msg":"retention scrubbed old bodies","events":2,"dead_letters":0`) {
		if time.Now().After(deadline) {
			t.Fatalf("no retention summary logged:\n%s", d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop()
	if logs := d.logs.String(); strings.Contains(logs, "Jane") || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("logs hold personal data or an error:\n%s", logs)
	}
}

// TestServeExposesForgetOverdue holds a snapshot of the daemon's database
// while a redaction arrives: /metrics shows personad_forget_overdue_seconds
// above 0 and a warning is logged once, until the reader leaves.
func TestServeExposesForgetOverdue(t *testing.T) {
	d := startDaemon(t, defaultEnv(), "-forget-within", "20ms")
	overdue := func() float64 {
		t.Helper()
		raw := d.metrics()
		for line := range strings.SplitSeq(raw, "\n") {
			if v, ok := strings.CutPrefix(line, "personad_forget_overdue_seconds "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("/metrics lacks personad_forget_overdue_seconds:\n%s", raw)
		return 0
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s\n%s", what, d.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := overdue(); got != 0 {
		t.Fatalf("personad_forget_overdue_seconds = %v at start, want 0", got)
	}
	if r := d.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.raw)
	}

	reader, err := sql.Open("sqlite", "file:"+d.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	snapshot, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer snapshot.Rollback()
	var n int
	if err := snapshot.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if r := d.post(readFixture(t, "inquiry.redacted.json"), nil); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.raw)
	}
	const warning = "the WAL still holds scrubbed-away data past -forget-within"
	waitFor("overdue", func() bool { return overdue() > 0 && strings.Contains(d.logs.String(), warning) })
	snapshot.Rollback()
	waitFor("no longer overdue", func() bool { return overdue() == 0 })
	if got := strings.Count(d.logs.String(), warning); got != 1 {
		t.Errorf("the warning was logged %d times, want once", got)
	}
}
