package engine_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/personad/personad/engine"
)

// fixturePII is every personal value in testdata/events.
var fixturePII = []string{
	"Jane", "Marie", "Doe", "123 Main St", "San Francisco", "94111", "1995-09-08",
	"jane@example.com", "+14155550123", "D1234567", "123-45-6789",
	"called support about her licence", "192.0.2.4", "37.7749", "-122.4194", "vip", "Mozilla/5.0",
}

func TestScrub(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "*", "inquiry.*.json"))
	top, _ := filepath.Glob(filepath.Join("..", "testdata", "events", "inquiry.*.json"))
	files = append(files, top...)
	if len(files) < 15 {
		t.Fatalf("found only %d fixtures", len(files))
	}
	for _, file := range files {
		rel, _ := filepath.Rel(filepath.Join("..", "testdata", "events"), file)
		t.Run(rel, func(t *testing.T) {
			body := fixture(t, rel)
			scrubbed, err := engine.Scrub(body)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(scrubbed) {
				t.Fatalf("scrubbed body is not JSON: %s", scrubbed)
			}
			for _, pii := range fixturePII {
				if bytes.Contains(scrubbed, []byte(pii)) {
					t.Errorf("scrubbed body still holds %q", pii)
				}
			}
			// The log must still explain the history: the event reads the
			// same, but for the tags that redaction empties.
			want, _ := engine.Parse(body)
			got, err := engine.Parse(scrubbed)
			if err != nil {
				t.Fatal(err)
			}
			if want.Inquiry.Tags != nil {
				want.Inquiry.Tags = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("scrubbing changed the facts:\n got  %+v\n want %+v", got, want)
			}
			for _, keep := range []string{"evt_", "inq_kT4xVnR2bPmYwL9sTgD3cExZ", "act_fJ8mQpDLrYvNcBzWk5HsAxRy", "itmpl_AbN9KvR4LmT2WqYxPdHsZgFc", "user-1234", "Example KYC Template"} {
				if !bytes.Contains(scrubbed, []byte(keep)) {
					t.Errorf("scrubbing removed %q, which is no PII", keep)
				}
			}
			again, _ := engine.Scrub(scrubbed)
			if !bytes.Equal(again, scrubbed) {
				t.Error("Scrub is not idempotent")
			}
		})
	}
}

func TestScrubKeepsLayout(t *testing.T) {
	body := []byte(`{"data": {"attributes": {"context": {"added-tags": ["vip"]}, "payload": {"data": {"attributes": {"status": "approved", "fields": {"name-first": {"type": "string", "value": "Jane"}, "odd": "x"}, "name-last": "Doe", "nameSuffix": "Jr.", "name": "Example KYC Template", "note": null}}}}}}`)
	want := `{"data": {"attributes": {"context": {"added-tags": []}, "payload": {"data": {"attributes": {"status": "approved", "fields": {"name-first": {"type": "string", "value": null}, "odd": null}, "name-last": null, "nameSuffix": null, "name": "Example KYC Template", "note": null}}}}}}`
	got, err := engine.Scrub(body)
	if err != nil || string(got) != want {
		t.Errorf("Scrub = %s, %v\nwant %s", got, err, want)
	}
	if _, err := engine.Scrub([]byte(`{"data":`)); err == nil {
		t.Error("Scrub accepted a truncated body")
	}
}
