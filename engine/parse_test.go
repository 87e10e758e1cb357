package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/personad/personad/engine"
)

func TestParseFixtures(t *testing.T) {
	const inq = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"
	tests := []struct {
		file       string
		name       string
		objectType string
		related    string // RelatedInquiryID
		status     engine.Status
		tags       []string
		redacted   bool
	}{
		{"inquiry.created.json", engine.EventCreated, "inquiry", "", engine.StatusCreated, []string{}, false},
		{"inquiry.started.json", engine.EventStarted, "inquiry", "", engine.StatusPending, []string{}, false},
		{"inquiry.transitioned.json", engine.EventTransitioned, "inquiry", "", engine.StatusPending, []string{}, false},
		{"inquiry.updated-tags.json", engine.EventUpdatedTags, "inquiry", "", engine.StatusPending, []string{"vip"}, false},
		{"inquiry.completed.json", engine.EventCompleted, "inquiry", "", engine.StatusCompleted, []string{"vip"}, false},
		{"inquiry.failed.json", engine.EventFailed, "inquiry", "", engine.StatusFailed, []string{"vip"}, false},
		{"inquiry.expired.json", engine.EventExpired, "inquiry", "", engine.StatusExpired, []string{"vip"}, false},
		{"inquiry.marked-for-review.json", engine.EventMarkedForReview, "inquiry", "", engine.StatusNeedsReview, []string{"vip"}, false},
		{"inquiry.approved.json", engine.EventApproved, "inquiry", "", engine.StatusApproved, []string{"vip"}, false},
		{"inquiry.declined.json", engine.EventDeclined, "inquiry", "", engine.StatusDeclined, []string{"vip"}, false},
		{"inquiry.reusable-persona-created.json", engine.EventReusablePersonaCreate, "inquiry", "", engine.StatusApproved, []string{"vip"}, false},
		{"inquiry.reusable-persona-used.json", engine.EventReusablePersonaUsed, "inquiry", "", engine.StatusApproved, []string{"vip"}, false},
		{"inquiry.redacted.json", engine.EventRedacted, "inquiry", "", engine.StatusApproved, []string{}, true},
		{"inquiry.approved.blank-status.json", engine.EventApproved, "inquiry", "", "", []string{"vip"}, false},
		{"account.created.json", "account.created", "account", "", "", nil, false},
		{"inquiry-session.started.json", "inquiry-session.started", "inquiry-session", inq, "", nil, false},
		{"verification.passed.json", "verification.passed", "verification/government-id", inq, "", nil, false},
		{"report_watchlist.matched.json", "report/watchlist.matched", "report/watchlist", inq, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := engine.Parse(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(ev.ID, "evt_") || ev.Name != tt.name || ev.ObjectType != tt.objectType || ev.CreatedAt.IsZero() {
				t.Errorf("got id=%q name=%q type=%q created=%v", ev.ID, ev.Name, ev.ObjectType, ev.CreatedAt)
			}
			if ev.RelatedInquiryID != tt.related {
				t.Errorf("related inquiry %q, want %q", ev.RelatedInquiryID, tt.related)
			}
			if tt.objectType != "inquiry" {
				if ev.IsInquiry() || !reflect.DeepEqual(ev.Inquiry, engine.Snapshot{}) {
					t.Errorf("non-inquiry event carries an inquiry snapshot: %+v", ev.Inquiry)
				}
				return
			}
			snap := ev.Inquiry
			if ev.ObjectID != inq || snap.Status != tt.status || !reflect.DeepEqual(snap.Tags, tt.tags) ||
				snap.RedactedAt.IsZero() == tt.redacted {
				t.Errorf("got object=%q status=%q tags=%q redacted-at=%v", ev.ObjectID, snap.Status, snap.Tags, snap.RedactedAt)
			}
			if snap.AccountID != "act_fJ8mQpDLrYvNcBzWk5HsAxRy" || snap.TemplateID != "itmpl_AbN9KvR4LmT2WqYxPdHsZgFc" ||
				snap.ReferenceID != "user-1234" || !snap.CreatedAt.Equal(time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)) {
				t.Errorf("got account=%q template=%q reference=%q created=%v", snap.AccountID, snap.TemplateID, snap.ReferenceID, snap.CreatedAt)
			}
		})
	}
}

// TestParseInflections: Persona inflects every key in kebab-case,
// snake_case or camelCase; the parsed event must not depend on which.
func TestParseInflections(t *testing.T) {
	for _, name := range []string{"inquiry.approved.json", "inquiry.started.json", "inquiry.redacted.json"} {
		want, err := engine.Parse(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, style := range []string{"snake", "camel"} {
			t.Run(style+"/"+name, func(t *testing.T) {
				got, err := engine.Parse(fixture(t, filepath.Join(style, name)))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got  %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

func TestParseDetails(t *testing.T) {
	ev, err := engine.Parse([]byte(`{"data":{"attributes":{"payload":{"data":{"attributes":{"status":"needs-review","tags":["a\u00e9\"b"]},
		"relationships":{"template":{"data":{"id":"tmpl_old"}}},"id":"inq_1","type":"inquiry"}},
		"createdAt":"2024-03-15T20:30:00.5+02:00","name":"inquiry.marked-for-review"},"id":"evt_1","type":"event"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Inquiry.Status != engine.StatusNeedsReview {
		t.Errorf("status %q, want needs_review", ev.Inquiry.Status)
	}
	if ev.Inquiry.TemplateID != "tmpl_old" {
		t.Errorf("template %q, want the template relationship as fallback", ev.Inquiry.TemplateID)
	}
	if want := []string{`aé"b`}; !reflect.DeepEqual(ev.Inquiry.Tags, want) {
		t.Errorf("tags %q, want %q", ev.Inquiry.Tags, want)
	}
	if want := time.Date(2024, 3, 15, 18, 30, 0, 5e8, time.UTC); !ev.CreatedAt.Equal(want) || ev.CreatedAt.Location() != time.UTC {
		t.Errorf("created-at %v, want %v in UTC", ev.CreatedAt, want)
	}
}

// TestParseEscapedKeys: a key written with JSON escapes is the same key
// ("\u0069d" is "id"), as FuzzParse's re-encoding property requires.
func TestParseEscapedKeys(t *testing.T) {
	const body = `{"data":{"type":"event","%s":"evt_1","attributes":{"name":"inquiry.started","%s":"2024-03-15T18:31:00Z",` +
		`"payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"%s":"pending"}}}}}}`
	want, err := engine.Parse(fmt.Appendf(nil, body, "id", "created-at", "status"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine.Parse(fmt.Appendf(nil, body, `\u0069d`, `created\u002dat`, `st\u0061tus`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseMalformed(t *testing.T) {
	const ok = `{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.started","created-at":"2024-03-15T18:30:00.000Z","payload":%s}}}`
	tests := []struct {
		name, body, field string
	}{
		{"empty", ``, ""},
		{"not JSON", `hello`, ""},
		{"truncated", `{"data":{"type":"event","id":"evt_1"`, ""},
		{"trailing garbage", `{"data":{}} x`, ""},
		{"array", `[1,2]`, ""},
		{"string", `"event"`, ""},
		{"no data", `{"meta":{}}`, "data"},
		{"data not object", `{"data":[]}`, "data"},
		{"not an event", `{"data":{"type":"inquiry","id":"inq_1","attributes":{}}}`, "data.type"},
		{"no id", `{"data":{"type":"event","attributes":{"name":"x","created-at":"2024-03-15T18:30:00Z","payload":{}}}}`, "data.id"},
		{"id not string", `{"data":{"type":"event","id":7,"attributes":{}}}`, "data.id"},
		{"no attributes", `{"data":{"type":"event","id":"evt_1"}}`, "data.attributes"},
		{"no name", `{"data":{"type":"event","id":"evt_1","attributes":{"created-at":"2024-03-15T18:30:00Z","payload":{}}}}`, "data.attributes.name"},
		{"no created-at", `{"data":{"type":"event","id":"evt_1","attributes":{"name":"x","payload":{}}}}`, "data.attributes.created-at"},
		{"bad created-at", `{"data":{"type":"event","id":"evt_1","attributes":{"name":"x","created-at":"yesterday","payload":{}}}}`, "data.attributes.created-at"},
		{"no payload", `{"data":{"type":"event","id":"evt_1","attributes":{"name":"x","created-at":"2024-03-15T18:30:00Z"}}}`, "data.attributes.payload"},
		{"payload not object", strings.Replace(ok, "%s", `"x"`, 1), "data.attributes.payload"},
		{"status not string", strings.Replace(ok, "%s", `{"data":{"type":"inquiry","id":"i","attributes":{"status":1}}}`, 1), "data.attributes.payload.data.attributes.status"},
		{"bad redacted-at", strings.Replace(ok, "%s", `{"data":{"type":"inquiry","id":"i","attributes":{"redacted-at":"soon"}}}`, 1), "data.attributes.payload.data.attributes.redacted-at"},
		{"tags not strings", strings.Replace(ok, "%s", `{"data":{"type":"inquiry","id":"i","attributes":{"tags":[1]}}}`, 1), "data.attributes.payload.data.attributes.tags"},
		{"invalid UTF-8", "{\"data\":{\"type\":\"event\",\"id\":\"evt_\xff\"}}", ""},
		{"control character", "{\"data\":{\"type\":\"event\",\"id\":\"evt\n\"}}", ""},
		{"deeply nested", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), ""},
		{"deep inside payload", strings.Replace(ok, "%s", `{"x":`+strings.Repeat(`{"a":`, 70)+`1`+strings.Repeat(`}`, 71), 1), ""},
		{"bad escape", `{"data":{"type":"event","id":"\q"}}`, ""},
		{"bad number", `{"data":{"x":01}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := engine.Parse([]byte(tt.body))
			var pe *engine.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, engine.ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want a *ParseError", ev, err)
			}
			if pe.Field != tt.field {
				t.Errorf("error names field %q, want %q (%v)", pe.Field, tt.field, err)
			}
			if tt.field != "" && !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

// FuzzParse: Parse never panics, accepts nothing encoding/json rejects and
// nothing that is not UTF-8, and fills in what an accepted event must have.
// A body that is valid JSON reads the same (event or error) when written
// again in kebab-case, snake_case or camelCase, and an accepted one reads
// the same with every object's members in reverse order. Seeds:
// testdata/fuzz/FuzzParse, from testdata/events in all three inflections.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"data":{"type":"event","id":"e","attributes":{"name":"n","created-at":"2024-01-01T00:00:00Z","payload":{}}}}`))
	f.Add([]byte(`[{"a":"\u00e9"},-1.5e3,true,null]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := engine.Parse(body)
		if err != nil {
			if !errors.Is(err, engine.ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
		} else {
			if !json.Valid(body) || !utf8.Valid(body) {
				t.Fatalf("accepted a body that is not UTF-8 JSON: %q", body)
			}
			checkEvent(t, ev)
		}
		if !json.Valid(body) || !utf8.Valid(body) {
			return
		}
		doc, derr := decodeDoc(body)
		if derr != nil {
			t.Fatalf("decoding valid JSON: %v", derr)
		}
		for _, style := range []struct {
			name    string
			inflect func(string) string
		}{{"kebab-case", kebabCase}, {"snake_case", snakeCase}, {"camelCase", camelCase}} {
			again := doc.render(style.inflect, false)
			ev2, err2 := engine.Parse(again)
			if fmt.Sprint(err2) != fmt.Sprint(err) || !reflect.DeepEqual(ev2, ev) {
				t.Fatalf("%s reads differently:\n%s\n%+v, %v\nwant %+v, %v", style.name, again, ev2, err2, ev, err)
			}
		}
		if err != nil || doc.hasSameKeyTwice() {
			return
		}
		reversed := doc.render(kebabCase, true)
		if ev2, err2 := engine.Parse(reversed); err2 != nil || !reflect.DeepEqual(ev2, ev) {
			t.Fatalf("members in reverse order read differently:\n%s\n%+v, %v\nwant %+v", reversed, ev2, err2, ev)
		}
	})
}

// checkEvent fails unless ev has what Parse promises of an accepted event.
func checkEvent(t *testing.T, ev *engine.Event) {
	t.Helper()
	if ev.ID == "" || ev.Name == "" || ev.CreatedAt.IsZero() {
		t.Fatalf("accepted an event without id, name or created-at: %+v", ev)
	}
	for _, tm := range []time.Time{ev.CreatedAt, ev.Inquiry.CreatedAt, ev.Inquiry.RedactedAt} {
		if tm.Location() != time.UTC {
			t.Fatalf("time %v not in UTC", tm)
		}
	}
	if ev.ObjectType != "inquiry" && !reflect.DeepEqual(ev.Inquiry, engine.Snapshot{}) {
		t.Fatalf("%q event carries an inquiry snapshot: %+v", ev.ObjectType, ev.Inquiry)
	}
}

// TestParsePersonaExamples: every one of Persona's official example bodies,
// in each key inflection, is an event personad reads, with its object.
func TestParsePersonaExamples(t *testing.T) {
	for _, name := range personaExampleNames(t) {
		orig := personaExample(t, name)
		for _, infl := range inflections {
			t.Run(name+"/"+infl.name, func(t *testing.T) {
				ev, err := engine.Parse(inflectBody(t, orig, infl.key))
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if ev.ID == "" || ev.Name == "" || ev.CreatedAt.IsZero() || ev.ObjectType == "" || ev.ObjectID == "" {
					t.Errorf("Parse = %+v: id, name, created-at, object type and id all wanted", ev)
				}
			})
		}
	}
}

// TestParseToleratesNulls: what Persona's schema makes nullable never
// fails a parse; a value of the wrong type fails it only where personad
// needs it (an inquiry's lifecycle attributes).
func TestParseToleratesNulls(t *testing.T) {
	body := func(typ, attrs string) []byte {
		return []byte(`{"data":{"type":"event","id":"evt_1","attributes":{"name":"x.updated","created-at":"2024-03-15T18:30:00.000Z",` +
			`"payload":{"data":{"attributes":` + attrs + `,"type":"` + typ + `","id":"obj_1"}}}}}`)
	}
	for _, tt := range []struct {
		name, typ, attrs string
		tags             []string
		malformed        bool
	}{
		{"null tag items dropped", "inquiry", `{"status":"approved","tags":["vip",null,"b"]}`, []string{"vip", "b"}, false},
		{"all null tags", "inquiry", `{"tags":[null]}`, []string{}, false},
		{"null members", "inquiry", `{"status":null,"tags":null,"reference-id":null,"redacted-at":null,"created-at":null}`, nil, false},
		{"verification with odd types", "verification/database", `{"status":5,"tags":"x","redacted-at":false,"reference-id":{}}`, nil, false},
		{"report with a tag that is no string", "report/watchlist", `{"tags":[1,{"a":2}],"status":"ready"}`, nil, false},
		{"inquiry status not a string", "inquiry", `{"status":5}`, nil, true},
		{"inquiry tag not a string", "inquiry", `{"tags":["a",1]}`, nil, true},
		{"inquiry tags not an array", "inquiry", `{"tags":"a"}`, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := engine.Parse(body(tt.typ, tt.attrs))
			if tt.malformed {
				if !errors.Is(err, engine.ErrMalformed) {
					t.Fatalf("Parse = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.ObjectID != "obj_1" {
				t.Errorf("object id %q: the attributes after the odd ones were not read", ev.ObjectID)
			}
			if tt.typ == "inquiry" && !slices.Equal(ev.Inquiry.Tags, tt.tags) {
				t.Errorf("tags = %q, want %q", ev.Inquiry.Tags, tt.tags)
			}
		})
	}
}
