package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

// startDaemonAt starts a daemon on the database at dbPath. Its Close error
// is only logged: the faults these tests make can keep the final
// checkpoint from succeeding.
func startDaemonAt(t *testing.T, dbPath string, flags ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dbPath: dbPath, logs: &syncBuffer{}}
	d.Serve = NewServe(io.Discard, d.logs)
	d.Getenv = func(k string) string { return defaultEnv()[k] }
	args := append([]string{"-db", dbPath, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-log-format", "json"}, flags...)
	if err := d.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Logf("shutdown after the fault: %v", err)
		}
	})
	return d
}

// healthz asks /healthz without a token, as a load balancer does.
func (d *daemon) healthz() response {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.APIAddr()+"/healthz", nil)
	return send(d.t, req)
}

// TestHealthzTellsTheTruth: /healthz is 200 {"status":"ok"} on a healthy
// daemon and a 503 naming the reason when the file system has less room
// than -min-free.
func TestHealthzTellsTheTruth(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	if r := d.healthz(); r.code != 200 || r.body["status"] != "ok" {
		t.Errorf("/healthz of a healthy daemon: %d %s", r.code, r.raw)
	}
	low := startDaemon(t, defaultEnv(), "-min-free", "1048576GiB") // a pebibyte
	r := low.healthz()
	if r.code != 503 || r.errCode() != store.HealthDiskLow || !strings.Contains(r.raw, "below the minimum") {
		t.Errorf("/healthz below -min-free: %d %s, want 503 %s", r.code, r.raw, store.HealthDiskLow)
	}
	if r := low.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
		t.Errorf("a delivery below -min-free: %d %s, want 200 while SQLite can still write", r.code, r.raw)
	}
	if r := startDaemon(t, defaultEnv(), "-min-free", "0").healthz(); r.code != 200 {
		t.Errorf("/healthz with -min-free 0: %d %s, want 200", r.code, r.raw)
	}
}

// TestServeRefusesBadMinFree: -min-free takes a size.
func TestServeRefusesBadMinFree(t *testing.T) {
	s := NewServe(io.Discard, io.Discard)
	s.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := s.ParseFlags([]string{"-min-free", "lots"}); err == nil || !strings.Contains(err.Error(), "-min-free") {
		t.Errorf("-min-free lots: %v, want an error naming -min-free", err)
	}
}

// TestDatabaseReplacedUnderDaemon replaces (or deletes) the database file
// under the running daemon, as a restore-in-place or a careless cleanup
// would: every later delivery must be a 503, so that Persona keeps it,
// /healthz must fail naming the reason, and the log must say so.
func TestDatabaseReplacedUnderDaemon(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, path string)
	}{
		{"restored over", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".restore", b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".restore", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, path string) {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemonAt(t, filepath.Join(t.TempDir(), "personad.db"))
			if r := d.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
				t.Fatalf("post: %d %s", r.code, r.raw)
			}
			tt.replace(t, d.dbPath)
			if r := d.post(readFixture(t, "inquiry.started.json"), nil); r.code != 503 || r.errCode() != server.CodeUnavailable {
				t.Errorf("post after the file was %s: %d %s, want 503", tt.name, r.code, r.raw)
			}
			if r := d.healthz(); r.code != 503 || r.errCode() != store.HealthReplaced {
				t.Errorf("/healthz after the file was %s: %d %s, want 503 %s", tt.name, r.code, r.raw, store.HealthReplaced)
			}
			if r := d.post(readFixture(t, "inquiry.completed.json"), nil); r.code != 503 {
				t.Errorf("a later post: %d %s, want 503 until restarted", r.code, r.raw)
			}
			if logs := d.logs.String(); strings.Count(logs, "database file replaced or deleted under the running daemon") != 1 ||
				!strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("want one error logged saying the file was replaced; logs:\n%s", logs)
			}
		})
	}
}

// TestOneWriterPerDatabase: while serve runs, a second serve, rebuild or
// retain on its file refuses to start, naming serve's PID; the read-only
// commands still work.
func TestOneWriterPerDatabase(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	if r := d.post(readFixture(t, "inquiry.created.json"), nil); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.raw)
	}
	pid := "process " + strconv.Itoa(os.Getpid())
	second := NewServe(io.Discard, io.Discard)
	second.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := second.ParseFlags([]string{"-db", d.dbPath, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), pid) {
		second.Close(context.Background())
		t.Errorf("a second serve: %v, want ErrLocked naming %s", err, pid)
	}
	for _, args := range [][]string{
		{"rebuild", "-db", d.dbPath},
		{"retain", "-db", d.dbPath, "-older-than", "1h"},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, "database is locked") || !strings.Contains(stderr, pid) {
			t.Errorf("personad %s beside serve: exit %d, stderr %q; want 1, naming %s", strings.Join(args, " "), code, stderr, pid)
		}
	}
	for _, args := range [][]string{
		{"inquiry", "-db", d.dbPath, "inq_kT4xVnR2bPmYwL9sTgD3cExZ"},
		{"events", "-db", d.dbPath, "inq_kT4xVnR2bPmYwL9sTgD3cExZ"},
		{"verify", "-db", d.dbPath},
	} {
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Errorf("personad %s beside serve: exit %d, %s", strings.Join(args, " "), code, stderr)
		}
	}
	d.stop()
	if code, _, stderr := runCLI(t, "rebuild", "-db", d.dbPath); code != 0 {
		t.Errorf("rebuild once serve stopped: exit %d, %s", code, stderr)
	}
}
