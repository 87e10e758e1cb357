package engine_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
)

const (
	fixtureInquiryID = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"
	fixtureAccountID = "act_fJ8mQpDLrYvNcBzWk5HsAxRy"
	fixtureReference = "user-1234"
)

// objectEvent returns a webhook about another object (an account, a case)
// with personal data in its attributes and the given relationships.
func objectEvent(eventID, name, typ, id, relationships string, redacted bool, at time.Time) []byte {
	redactedAt := "null"
	if redacted {
		redactedAt = fmt.Sprintf("%q", at.Format(time.RFC3339))
	}
	return fmt.Appendf(nil, `{"data":{"type":"event","id":%q,"attributes":{"name":%q,"created-at":%q,`+
		`"payload":{"data":{"type":%q,"id":%q,"attributes":{"status":"open","reference-id":%q,"redacted-at":%s,`+
		`"fields":{"name-first":{"type":"string","value":"Jane"}},"email-address":"jane@example.com"},`+
		`"relationships":%s}}}}}`,
		eventID, name, at.Format(time.RFC3339Nano), typ, id, fixtureReference, redactedAt, relationships)
}

// checkForgotten fails when any stored body of the objects named still
// holds a personal value, and checks that the inquiry's projection is what
// a fold of its (scrubbed) log gives.
func checkForgotten(t *testing.T, s *engine.MemoryStore, eng *engine.Engine, extra ...string) {
	t.Helper()
	recs, err := s.Events(ctx, fixtureInquiryID)
	if err != nil {
		t.Fatal(err)
	}
	related, err := s.RelatedEvents(ctx, fixtureInquiryID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(recs, related...) {
		for _, pii := range append(fixturePII, extra...) {
			if bytes.Contains(r.Body, []byte(pii)) {
				t.Errorf("%s (%s) still holds %q", r.EventID, r.Name, pii)
			}
		}
	}
	checkRefold(t, s, eng)
}

// checkRefold checks that the stored projection is the fold of the log.
func checkRefold(t *testing.T, s *engine.MemoryStore, eng *engine.Engine) {
	t.Helper()
	var c *engine.Change
	err := s.Update(ctx, func(tx engine.Tx) error {
		var err error
		if c, err = engine.Refold(tx, fixtureInquiryID, eng.Policy()); err != nil {
			return err
		}
		return errRollback // look, do not touch
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	got, _ := s.GetInquiry(ctx, fixtureInquiryID)
	recs, _ := s.Events(ctx, fixtureInquiryID)
	events := make([]*engine.Event, len(recs))
	for i, r := range recs {
		if events[i], err = engine.Parse(r.Body); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := engine.Fold(fixtureInquiryID, events, eng.Policy())
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("stored projection is not the fold of the log:\n got %s\nwant %s", g, w)
	}
	if c != nil {
		t.Errorf("Refold found a change: %+v", c)
	}
}

var errRollback = errors.New("roll back")

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestAccountRedactionCascades: account.redacted forgets the account's
// inquiries and what belongs to them at once, reference-id included,
// wherever it arrives; the inquiries' redacted flag still waits for
// Persona's own inquiry.redacted.
func TestAccountRedactionCascades(t *testing.T) {
	at := mustAt(t, "2024-03-16T10:00:00.000Z")
	redaction := objectEvent("evt_accountRedacted0000000001", "account.redacted", "account", fixtureAccountID, "{}", true, at)
	history := []string{"inquiry.created.json", "inquiry.started.json", "verification.passed.json",
		"inquiry.updated-tags.json", "inquiry.approved.json", "report_watchlist.matched.json", "account.created.json"}
	for pos := 0; pos <= len(history); pos++ {
		t.Run(fmt.Sprintf("redaction at %d", pos), func(t *testing.T) {
			s := engine.NewMemoryStore()
			eng := engine.New(s, engine.Policy{})
			for i, f := range history {
				if i == pos {
					deliver(t, eng, redaction)
				}
				deliver(t, eng, fixture(t, f))
			}
			if pos == len(history) {
				deliver(t, eng, redaction)
			}
			checkForgotten(t, s, eng, fixtureReference)
			inq, err := eng.Inquiry(ctx, fixtureInquiryID)
			if err != nil {
				t.Fatal(err)
			}
			if inq.Redacted || inq.ReferenceID != "" || len(inq.Tags) != 0 || inq.Status != engine.StatusApproved {
				t.Errorf("projection after the account's redaction: %+v; want approved, not redacted, no reference-id or tags", inq)
			}
			// Persona's own inquiry.redacted for the cascade marks it.
			deliver(t, eng, fixture(t, "inquiry.redacted.json"))
			if inq, _ = eng.Inquiry(ctx, fixtureInquiryID); !inq.Redacted {
				t.Errorf("inquiry.redacted did not mark the inquiry redacted")
			}
			checkForgotten(t, s, eng, fixtureReference)
		})
	}
}

// TestLinkLearnedLater: a verification whose body has no relationships
// belongs to the inquiry that lists it, and is forgotten with it whatever
// the order: stored before the redaction, or before the inquiry body that
// lists it.
func TestLinkLearnedLater(t *testing.T) {
	bare := storetest.WithoutRelationships(t, fixture(t, "verification.passed.json"))
	for _, tt := range []struct {
		name  string
		order []string // "ver" is the bare verification
	}{
		{"verification first", []string{"ver", "inquiry.redacted.json", "inquiry.approved.json"}},
		{"listing after the redaction", []string{"inquiry.redacted.json", "ver", "inquiry.approved.json"}},
		{"verification last", []string{"inquiry.redacted.json", "inquiry.approved.json", "ver"}},
		{"listing first", []string{"inquiry.approved.json", "ver", "inquiry.redacted.json"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := engine.NewMemoryStore()
			eng := engine.New(s, engine.Policy{})
			var verID string
			for _, f := range tt.order {
				body := bare
				if f != "ver" {
					body = fixture(t, f)
				}
				res := deliver(t, eng, body)
				if f == "ver" {
					verID = res.EventID
				}
			}
			checkForgotten(t, s, eng)
			for _, r := range storedEvents(t, s) {
				if r.EventID != verID {
					continue
				}
				for _, pii := range fixturePII {
					if bytes.Contains(r.Body, []byte(pii)) {
						t.Errorf("verification without relationships still holds %q", pii)
					}
				}
				return
			}
			t.Fatalf("verification %s not stored", verID)
		})
	}
}

// TestOtherRedactions: case.redacted (and any <object>.redacted) forgets
// that object's bodies and those of what belongs to it, and leaves the
// inquiry it names alone.
func TestOtherRedactions(t *testing.T) {
	at := mustAt(t, "2024-03-16T10:00:00.000Z")
	caseRel := fmt.Sprintf(`{"inquiries":{"data":[{"type":"inquiry","id":%q}]}}`, fixtureInquiryID)
	created := objectEvent("evt_caseCreated000000000000001", "case.created", "case", "case_1", caseRel, false, at)
	comment := objectEvent("evt_caseComment000000000000001", "case-comment.created", "case-comment", "ccom_1",
		`{"case":{"data":{"type":"case","id":"case_1"}}}`, false, at.Add(time.Second))
	redacted := objectEvent("evt_caseRedacted00000000000001", "case.redacted", "case", "case_1", caseRel, true, at.Add(time.Minute))
	s := engine.NewMemoryStore()
	eng := engine.New(s, engine.Policy{})
	deliver(t, eng, fixture(t, "inquiry.approved.json"))
	for _, b := range [][]byte{created, redacted, comment} {
		deliver(t, eng, b)
	}
	for _, r := range storedEvents(t, s) {
		scrubbed := !bytes.Contains(r.Body, []byte("Jane"))
		switch r.ObjectType {
		case "case", "case-comment":
			if !scrubbed {
				t.Errorf("%s of %s not scrubbed: %s", r.Name, r.ObjectID, r.Body)
			}
		case "inquiry":
			if scrubbed {
				t.Errorf("the case's redaction scrubbed its inquiry's %s", r.Name)
			}
		}
	}
	if inq, _ := eng.Inquiry(ctx, fixtureInquiryID); inq.Redacted || inq.ReferenceID != fixtureReference {
		t.Errorf("inquiry after the case's redaction: %+v", inq)
	}
}

// TestDeadLettersForget: an authentic body that did not parse is scrubbed
// when it names a forgotten id, before or after the redaction; one that is
// not JSON becomes null; others are kept as received.
func TestDeadLettersForget(t *testing.T) {
	notJSON := []byte(`{"data": {"id": "evt_x", "inquiry": "` + fixtureInquiryID + `", "name": "Jane Doe"`)
	notEvent := []byte(`{"data": {"type": "event", "attributes": {"payload": {"data": {"id": "` + fixtureInquiryID + `", "attributes": {"name-first": "Jane"}}}}}}`)
	unrelated := []byte(`{"inquiry": "inq_someoneElse01", "name": "Jane Doe"}`)
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("before=%v", before), func(t *testing.T) {
			s := engine.NewMemoryStore()
			eng := engine.New(s, engine.Policy{})
			dead := func() {
				for _, b := range [][]byte{notJSON, notEvent, unrelated} {
					if _, err := eng.Ingest(ctx, engine.Delivery{Body: b, ReceivedAt: time.Now()}); !errors.Is(err, engine.ErrMalformed) {
						t.Fatalf("Ingest of a dead letter = %v, want ErrMalformed", err)
					}
				}
			}
			if before {
				dead()
			}
			deliver(t, eng, fixture(t, "inquiry.redacted.json"))
			if !before {
				dead()
			}
			got := s.DeadLetters()
			if len(got) != 3 {
				t.Fatalf("%d dead letters, want 3", len(got))
			}
			for _, d := range got {
				switch {
				case bytes.Contains(d.Body, []byte("someoneElse")):
					if !bytes.Equal(d.Body, unrelated) {
						t.Errorf("unrelated dead letter rewritten: %s", d.Body)
					}
				case bytes.Contains(d.Body, []byte("Jane")):
					t.Errorf("dead letter naming the inquiry still holds personal data: %s", d.Body)
				}
			}
			if !bytes.Equal(got[0].Body, []byte("null")) {
				t.Errorf("the dead letter that is not JSON = %q, want null", got[0].Body)
			}
		})
	}
}

// storedEvents returns every event of the store, whatever its object.
func storedEvents(t *testing.T, s *engine.MemoryStore) []engine.Record {
	t.Helper()
	return s.AllEvents()
}

// TestRedactionStaysWithItsPerson: a transaction or a case that names two
// inquiries is forgotten with either, but never leads from one inquiry to
// the other, even when an inquiry names the transaction.
func TestRedactionStaysWithItsPerson(t *testing.T) {
	at := mustAt(t, "2024-03-16T10:00:00.000Z")
	const other = "inq_someoneElse000000000001"
	both := fmt.Sprintf(`{"related-objects":{"data":[{"type":"inquiry","id":%q},{"type":"inquiry","id":%q}]},`+
		`"inquiries":{"data":[{"type":"inquiry","id":%q},{"type":"inquiry","id":%q}]}}`,
		fixtureInquiryID, other, fixtureInquiryID, other)
	// Both inquiries name the transaction, as Persona's inquiry payload can.
	withTxn := func(body []byte) []byte {
		return bytes.Replace(body, []byte(`"relationships": {`), []byte(`"relationships": {"transaction": {"data": {"type": "transaction", "id": "txn_1"}},`), 1)
	}
	otherBody := bytes.ReplaceAll(fixture(t, "inquiry.approved.json"), []byte(fixtureInquiryID), []byte(other))
	otherBody = bytes.ReplaceAll(otherBody, []byte("evt_"), []byte("evt_o"))
	otherBody = bytes.ReplaceAll(otherBody, []byte(fixtureAccountID), []byte("act_someoneElse0000000001"))
	s := engine.NewMemoryStore()
	eng := engine.New(s, engine.Policy{})
	deliver(t, eng, withTxn(otherBody))
	deliver(t, eng, withTxn(fixture(t, "inquiry.approved.json")))
	deliver(t, eng, objectEvent("evt_txnCreated000000000000001", "transaction.created", "transaction", "txn_1", both, false, at))
	deliver(t, eng, objectEvent("evt_caseCreated00000000000002", "case.created", "case", "case_2", both, false, at))
	before, err := eng.Inquiry(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, eng, fixture(t, "inquiry.redacted.json"))
	for _, r := range storedEvents(t, s) {
		jane := bytes.Contains(r.Body, []byte("Jane"))
		switch {
		case r.ObjectID == other && !jane:
			t.Errorf("redacting %s scrubbed the other inquiry's %s", fixtureInquiryID, r.Name)
		case r.ObjectID != other && jane:
			t.Errorf("%s of %s not scrubbed", r.Name, r.ObjectID)
		}
	}
	after, _ := eng.Inquiry(ctx, other)
	if mustJSON(t, after) != mustJSON(t, before) {
		t.Errorf("the other inquiry's projection changed:\n%s\n%s", mustJSON(t, before), mustJSON(t, after))
	}
}
