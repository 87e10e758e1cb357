package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestGraphMatchesLifecycleDot(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "lifecycle.dot"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCLI(t, "graph")
	if code != 0 || out != string(want) {
		t.Errorf("personad graph (exit %d) differs from lifecycle.dot", code)
	}
	code, out, _ = runCLI(t, "graph", "-format", "mermaid")
	if code != 0 || !strings.HasPrefix(out, "stateDiagram-v2\n") || !strings.Contains(out, "expired --> pending: resume") {
		t.Errorf("mermaid graph (exit %d): %s", code, out)
	}
	if code, _, errOut := runCLI(t, "graph", "-format", "svg"); code != 2 || !strings.Contains(errOut, "Try:") {
		t.Errorf("unknown format: exit %d, %q", code, errOut)
	}
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, "help")
	for _, name := range []string{"serve", "send", "inquiry", "events", "rebuild", "graph", "version"} {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("help does not list %s", name)
		}
	}
	if code != 0 {
		t.Errorf("help exit %d", code)
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "personad ") {
		t.Errorf("version: exit %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "serve", "-h"); code != 0 {
		t.Errorf("serve -h: exit %d", code)
	}
}

// TestSendInquiryEventsRebuild drives the other commands against a real
// daemon: send signs and posts, inquiry and events read the database while
// serve runs, rebuild finds nothing to change.
func TestSendInquiryEventsRebuild(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	t.Setenv("E2E_SECRET", testSecret)
	files := []string{"inquiry.approved.json", "inquiry.created.json"}
	args := []string{"send", "-url", "http://" + d.WebhookAddr() + "/webhooks/persona", "-secret-env", "E2E_SECRET"}
	for _, f := range files {
		args = append(args, filepath.Join("..", "..", "testdata", "events", f))
	}
	code, out, errOut := runCLI(t, args...)
	if code != 0 || strings.Count(out, "200 OK") != 2 {
		t.Fatalf("send: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("E2E_SECRET", "wbhsec_wrong")
	if code, out, _ := runCLI(t, args...); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("send with a wrong secret: exit %d %s", code, out)
	}

	code, out, errOut = runCLI(t, "inquiry", "-db", d.dbPath, "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	var inq map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &inq) != nil || inq["status"] != "approved" {
		t.Fatalf("inquiry: exit %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "events", "-db", d.dbPath, "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	var hist struct{ Events []map[string]any }
	if code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist.Events) != 2 || hist.Events[1]["outcome"] != "inferred" {
		t.Fatalf("events: exit %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, "inquiry", "-db", d.dbPath, "inq_none"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown inquiry: exit %d %q", code, errOut)
	}
	d.stop()
	code, out, errOut = runCLI(t, "rebuild", "-db", d.dbPath)
	if code != 0 || !strings.Contains(out, "rebuilt 1 inquiries from 2 events") || !strings.Contains(out, "0 projections changed") {
		t.Errorf("rebuild: exit %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "inquiry", "-db", filepath.Join(t.TempDir(), "missing.db"), "x"); code != 1 || errOut == "" {
		t.Errorf("missing database: exit %d %q", code, errOut)
	}
}

// TestMissingDatabase: the commands that read or rework an existing
// database fail on a path that has none, and create nothing there.
func TestMissingDatabase(t *testing.T) {
	for _, args := range [][]string{
		{"inquiry", "inq_1"}, {"events", "inq_1"}, {"rebuild"}, {"verify"}, {"retain", "-older-than", "1h"},
	} {
		t.Run(args[0], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "typo.db")
			var stdout, stderr bytes.Buffer
			full := append([]string{args[0], "-db", path}, args[1:]...)
			if code := run(context.Background(), full, &stdout, &stderr); code != 1 {
				t.Errorf("%v: exit %d, want 1 (stderr %q)", full, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "no database at "+path) {
				t.Errorf("%v: stderr %q does not say there is no database", full, stderr.String())
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v created %s (%v)", full, path, err)
			}
		})
	}
}

// TestVersionFlags: -version and --version are the version command.
func TestVersionFlags(t *testing.T) {
	var want bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &want, io.Discard); code != 0 || want.Len() == 0 {
		t.Fatalf("version: exit %d, output %q", code, want.String())
	}
	for _, flag := range []string{"-version", "--version"} {
		var got bytes.Buffer
		if code := run(context.Background(), []string{flag}, &got, io.Discard); code != 0 || got.String() != want.String() {
			t.Errorf("%s: exit %d, output %q; want 0, %q", flag, code, got.String(), want.String())
		}
	}
}
