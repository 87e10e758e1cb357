package engine_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eventSpec describes a synthetic inquiry event for tests.
type eventSpec struct {
	ID, Name, Status  string // Status "" leaves the attribute out
	At                time.Time
	Inquiry           string
	RedactedAt        string
	Ref               string
	Tags              []string
	Account, Template string
}

// body renders spec as a compact kebab-case Persona webhook body.
func (s eventSpec) body() []byte {
	attrs := map[string]any{
		"created-at":  "2024-03-15T18:30:00.000Z",
		"name-first":  "Jane",
		"birthdate":   "1995-09-08",
		"redacted-at": nil,
	}
	if s.Status != "" {
		attrs["status"] = s.Status
	}
	if s.RedactedAt != "" {
		attrs["redacted-at"] = s.RedactedAt
	}
	if s.Ref != "" {
		attrs["reference-id"] = s.Ref
	}
	if s.Tags != nil {
		attrs["tags"] = s.Tags
	}
	rel := map[string]any{}
	if s.Account != "" {
		rel["account"] = map[string]any{"data": map[string]any{"type": "account", "id": s.Account}}
	}
	if s.Template != "" {
		rel["inquiry-template"] = map[string]any{"data": map[string]any{"type": "inquiry-template", "id": s.Template}}
	}
	inq := s.Inquiry
	if inq == "" {
		inq = "inq_test"
	}
	b, err := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event",
		"id":   s.ID,
		"attributes": map[string]any{
			"name":       s.Name,
			"created-at": s.At.UTC().Format("2006-01-02T15:04:05.000Z"),
			"payload": map[string]any{
				"data":     map[string]any{"type": "inquiry", "id": inq, "attributes": attrs, "relationships": rel},
				"included": []any{},
			},
		},
	}})
	if err != nil {
		panic(err)
	}
	return b
}

// at parses a shorthand time: "18:31", "18:31:05" or "18:31:05.250" on
// 2024-03-15 UTC, or a full RFC 3339 time.
func at(s string) (time.Time, error) {
	if strings.Contains(s, "T") {
		return time.Parse(time.RFC3339Nano, s)
	}
	for _, layout := range []string{"15:04", "15:04:05", "15:04:05.000"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Date(2024, 3, 15, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

func mustAt(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := at(s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// fixture reads a file under the repository's testdata/events.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
