package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestPolicyLivesInTheDatabase: the first serve records its -auto-decide
// in the file; a serve with another refuses to start and says how to
// change it; rebuild and verify use the recorded policy unless told
// otherwise, and rebuild -auto-decide changes it and says so.
func TestPolicyLivesInTheDatabase(t *testing.T) {
	d := startDaemon(t, defaultEnv(), "-auto-decide")
	path := d.dbPath
	for _, f := range []string{"inquiry.created.json", "inquiry.started.json", "inquiry.completed.json"} {
		if r := d.post(readFixture(t, f), nil); r.code != 200 {
			t.Fatalf("%s: %d %s", f, r.code, r.raw)
		}
	}
	decision := func() any {
		t.Helper()
		var out bytes.Buffer
		if code := run(context.Background(), []string{"inquiry", "-db", path, "inq_kT4xVnR2bPmYwL9sTgD3cExZ"}, &out, io.Discard); code != 0 {
			t.Fatalf("inquiry: exit %d", code)
		}
		return strings.Contains(out.String(), `"decision": "approved"`) || strings.Contains(out.String(), `"decision":"approved"`)
	}
	if decision() != true {
		t.Fatal("completed with -auto-decide is not approved")
	}
	d.stop()

	// Another policy: refused, with the way to change it.
	other := NewServe(io.Discard, io.Discard)
	other.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := other.ParseFlags([]string{"-db", path, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	err := other.Start()
	if err == nil {
		other.Close(context.Background())
		t.Fatal("serve without -auto-decide started on a file served with it")
	}
	if msg := formatError(err); !strings.Contains(msg, "-auto-decide=true") || !strings.Contains(msg, "personad rebuild -db "+path+" -auto-decide=false") {
		t.Errorf("refusal %q does not say how to change the policy", msg)
	}

	for _, tt := range []struct {
		name     string
		args     []string
		approved bool
		says     string
	}{
		{"rebuild keeps the recorded policy", []string{"rebuild", "-db", path}, true, "0 projections changed"},
		{"verify uses it", []string{"verify", "-db", path}, true, "ok:"},
		{"rebuild -auto-decide=false changes it", []string{"rebuild", "-db", path, "-auto-decide=false"}, false, "policy changed: -auto-decide=false, was true"},
		{"verify uses the new one", []string{"verify", "-db", path}, false, "ok:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errs); code != 0 {
				t.Fatalf("%v: exit %d: %s", tt.args, code, errs.String())
			}
			if !strings.Contains(out.String(), tt.says) {
				t.Errorf("%v printed %q, want it to say %q", tt.args, out.String(), tt.says)
			}
			if got := decision(); got != tt.approved {
				t.Errorf("after %v approved = %v, want %v", tt.args, got, tt.approved)
			}
		})
	}
	// The file now records the new policy: serve without -auto-decide starts.
	again := NewServe(io.Discard, io.Discard)
	again.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := again.ParseFlags([]string{"-db", path, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := again.Start(); err != nil {
		t.Fatalf("serve with the recorded policy: %v", err)
	}
	again.Close(context.Background())
}

// TestMetricsSurviveOddRows: inquiries no event gave a status personad
// knows (a null status, a status Persona added) are counted as "none",
// and /metrics answers 200 (one such row used to make every scrape a 500).
func TestMetricsSurviveOddRows(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	noStatus := bytes.Replace(readFixture(t, "inquiry.transitioned.json"), []byte(`"status": "pending",`), []byte(`"status": null,`), 1)
	strange := bytes.ReplaceAll(readFixture(t, "inquiry.started.json"), []byte("inq_kT4xVnR2bPmYwL9sTgD3cExZ"), []byte("inq_strange0000000000000001"))
	strange = bytes.Replace(strange, []byte(`"status": "pending",`), []byte(`"status": "under_audit",`), 1)
	for _, b := range [][]byte{noStatus, strange} {
		if r := d.post(b, nil); r.code != 200 {
			t.Fatalf("delivery: %d %s", r.code, r.raw)
		}
	}
	raw := d.metrics() // a 200, or the test fails
	for _, want := range []string{`personad_inquiries{status="none"} 2`} {
		if !strings.Contains(raw, want+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(raw, "personad_inquiries"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
