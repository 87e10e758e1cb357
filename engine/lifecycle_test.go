package engine_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/personad/personad/engine"
)

var update = flag.Bool("update", false, "rewrite golden files (lifecycle.dot, testdata/lifecycle.mmd)")

// golden compares got with a file, or rewrites the file under -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./engine -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s is out of date: run go test ./engine -update\n--- got\n%s", path, got)
	}
}

func TestGraphGolden(t *testing.T) {
	golden(t, filepath.Join("..", "lifecycle.dot"), engine.GraphDOT())
	golden(t, filepath.Join("..", "testdata", "lifecycle.mmd"), engine.GraphMermaid())
}

// TestLifecycleEdges pins the edges of reference section 5, and no others.
func TestLifecycleEdges(t *testing.T) {
	want := map[[2]engine.Status]string{
		{"created", "pending"}:        engine.EventStarted,
		{"created", "expired"}:        engine.EventExpired,
		{"pending", "completed"}:      engine.EventCompleted,
		{"pending", "failed"}:         engine.EventFailed,
		{"pending", "expired"}:        engine.EventExpired,
		{"pending", "needs_review"}:   engine.EventMarkedForReview,
		{"pending", "approved"}:       engine.EventApproved,
		{"pending", "declined"}:       engine.EventDeclined,
		{"completed", "needs_review"}: engine.EventMarkedForReview,
		{"completed", "approved"}:     engine.EventApproved,
		{"completed", "declined"}:     engine.EventDeclined,
		{"failed", "needs_review"}:    engine.EventMarkedForReview,
		{"failed", "approved"}:        engine.EventApproved,
		{"failed", "declined"}:        engine.EventDeclined,
		{"expired", "needs_review"}:   engine.EventMarkedForReview,
		{"expired", "approved"}:       engine.EventApproved,
		{"expired", "declined"}:       engine.EventDeclined,
		{"expired", "pending"}:        engine.TriggerResume,
		{"needs_review", "approved"}:  engine.EventApproved,
		{"needs_review", "declined"}:  engine.EventDeclined,
		{"approved", "declined"}:      engine.EventDeclined,
		{"declined", "approved"}:      engine.EventApproved,
	}
	for _, from := range engine.Statuses {
		for _, to := range engine.Statuses {
			trigger, ok := engine.Transition(from, to)
			if w, permitted := want[[2]engine.Status{from, to}]; ok != permitted || trigger != w {
				t.Errorf("Transition(%s, %s) = %q, %t; want %q, %t", from, to, trigger, ok, w, permitted)
			}
			if strings.Contains(engine.GraphDOT(), string(from)+" -> "+string(to)+" ") != ok {
				t.Errorf("DOT graph and transition table disagree on %s -> %s", from, to)
			}
		}
	}
	if _, ok := engine.Transition("archived", engine.StatusPending); ok {
		t.Error("an unknown status has transitions")
	}
}

func TestPath(t *testing.T) {
	tests := []struct {
		from, to engine.Status
		via      []engine.Status
		ok       bool
	}{
		{"created", "approved", []engine.Status{"pending"}, true},
		{"created", "completed", []engine.Status{"pending"}, true},
		{"created", "pending", nil, true},
		{"expired", "completed", []engine.Status{"pending"}, true},
		{"completed", "pending", nil, false},
		{"failed", "pending", nil, false},
		{"approved", "needs_review", nil, false},
		{"declined", "needs_review", nil, false},
		{"needs_review", "completed", nil, false},
		{"pending", "created", nil, false},
		{"approved", "created", nil, false},
	}
	for _, tt := range tests {
		via, ok := engine.Path(tt.from, tt.to)
		if ok != tt.ok || len(via) != len(tt.via) || (len(via) > 0 && via[0] != tt.via[0]) {
			t.Errorf("Path(%s, %s) = %v, %t; want %v, %t", tt.from, tt.to, via, ok, tt.via, tt.ok)
		}
	}
}
