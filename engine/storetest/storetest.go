// Package storetest holds the conformance tests every engine.Store must
// pass. A store's own tests call Run with a function that opens an empty
// store.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// Run runs the conformance tests against stores made by open, which must
// return a new, empty store each time and arrange for it to be closed.
func Run(t *testing.T, open func(t *testing.T) engine.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, engine.Store)
	}{
		{"AppendAndRecordDelivery", testAppendAndRecordDelivery},
		{"FailedUpdateLeavesNoTrace", testFailedUpdateLeavesNoTrace},
		{"Projections", testProjections},
		{"ChangeFeed", testChangeFeed},
		{"ReplaceBodies", testReplaceBodies},
		{"Forget", testForget},
		{"ReplaceDeadLetters", testReplaceDeadLetters},
		{"DeadLettersOncePerBody", testDeadLettersOncePerBody},
		{"DeadLetterPagesAndReplayMark", testDeadLetterPagesAndReplayMark},
		{"Listing", testListing},
		{"ListingByUser", testListingByUser},
		{"LookupForgetsReference", testLookupForgetsReference},
		{"IngestHistoryOutOfOrder", testIngestHistoryOutOfOrder},
		{"ConcurrentDuplicates", testConcurrentDuplicates},
		{"ConflictingRedelivery", testConflictingRedelivery},
		{"ProjectionTimesAtFullPrecision", testProjectionTimesAtFullPrecision},
		{"EventSource", testEventSource},
		{"Drifts", testDrifts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// Body returns a compact Persona webhook body for an inquiry event.
func Body(eventID, name, inquiryID string, status engine.Status, at time.Time) []byte {
	b, err := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event", "id": eventID,
		"attributes": map[string]any{
			"name": name, "created-at": at.UTC().Format(engine.TimeFormat),
			"payload": map[string]any{"data": map[string]any{
				"type": "inquiry", "id": inquiryID,
				"attributes": map[string]any{"status": status, "name-first": "Jane", "tags": []string{"vip"}},
			}},
		},
	}})
	if err != nil {
		panic(err)
	}
	return b
}

func record(eventID, inquiryID string, at time.Time) *engine.Record {
	body := Body(eventID, engine.EventStarted, inquiryID, engine.StatusPending, at)
	return &engine.Record{
		EventID: eventID, Name: engine.EventStarted, ObjectType: "inquiry", ObjectID: inquiryID,
		CreatedAt: at, ReceivedAt: at.Add(time.Second), AttemptsMade: 1, Deliveries: 1,
		Body: body, SHA256: sha256.Sum256(body), Outcome: engine.OutcomeApplied,
	}
}

// related returns an inquiry-session event that belongs to inquiryID.
func related(eventID, inquiryID string, at time.Time) *engine.Record {
	body := fmt.Appendf(nil, `{"data":{"type":"event","id":%q,"attributes":{"name":"inquiry-session.started",`+
		`"created-at":%q,"payload":{"data":{"type":"inquiry-session","id":"iqse_%s","attributes":{"status":"active",`+
		`"ip-address":"192.0.2.4"},"relationships":{"inquiry":{"data":{"type":"inquiry","id":%q}}}}}}}}`,
		eventID, at.Format(engine.TimeFormat), eventID, inquiryID)
	return &engine.Record{
		EventID: eventID, Name: "inquiry-session.started", ObjectType: "inquiry-session", ObjectID: "iqse_" + eventID,
		RelatedInquiryID: inquiryID, CreatedAt: at, ReceivedAt: at.Add(time.Second), AttemptsMade: 1, Deliveries: 1,
		Body: body, SHA256: sha256.Sum256(body), Outcome: engine.OutcomeUnknown,
	}
}

var t0 = time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)

func update(t *testing.T, s engine.Store, fn func(engine.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func testAppendAndRecordDelivery(t *testing.T, s engine.Store) {
	var seqs []int64
	update(t, s, func(tx engine.Tx) error {
		if red, err := tx.RecordDelivery("evt_1", 1, [32]byte{}); err != nil || red.Seen {
			return fmt.Errorf("RecordDelivery of a new id: seen=%t err=%v", red.Seen, err)
		}
		for i := 1; i <= 3; i++ {
			r := record(fmt.Sprintf("evt_%d", i), "inq_1", t0.Add(time.Duration(i)*time.Minute))
			if err := tx.AppendEvent(r); err != nil {
				return err
			}
			seqs = append(seqs, r.Seq)
		}
		return nil
	})
	if !(seqs[0] > 0 && seqs[0] < seqs[1] && seqs[1] < seqs[2]) {
		t.Errorf("seqs = %v, want strictly increasing and positive", seqs)
	}
	update(t, s, func(tx engine.Tx) error {
		sum := record("evt_2", "inq_1", t0.Add(2*time.Minute)).SHA256
		red, err := tx.RecordDelivery("evt_2", 4, sum)
		want := engine.Redelivery{Seen: true, Outcome: engine.OutcomeApplied, ObjectType: "inquiry", ObjectID: "inq_1"}
		if err != nil || red.Seen != want.Seen || red.Outcome != want.Outcome || red.Conflict ||
			red.ObjectType != want.ObjectType || red.ObjectID != want.ObjectID {
			return fmt.Errorf("RecordDelivery(evt_2) = %+v, %v; want %+v, nil", red, err, want)
		}
		_, err = tx.RecordDelivery("evt_2", 2, sum)
		return err
	})
	recs, err := s.Events(ctx, "inq_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("Events = %d records, want 3", len(recs))
	}
	for _, r := range recs {
		want := record(r.EventID, "inq_1", r.CreatedAt)
		wantDeliveries, wantAttempts := 1, 1
		if r.EventID == "evt_2" {
			wantDeliveries, wantAttempts = 3, 4
		}
		if r.Deliveries != wantDeliveries || r.AttemptsMade != wantAttempts {
			t.Errorf("%s: deliveries=%d attempts=%d, want %d, %d", r.EventID, r.Deliveries, r.AttemptsMade, wantDeliveries, wantAttempts)
		}
		if !bytes.Equal(r.Body, want.Body) || r.SHA256 != want.SHA256 || !r.CreatedAt.Equal(want.CreatedAt) ||
			!r.ReceivedAt.Equal(want.ReceivedAt) || r.Name != want.Name || r.ObjectType != "inquiry" || r.Outcome != engine.OutcomeApplied {
			t.Errorf("%s: stored record differs: %+v", r.EventID, r)
		}
	}
}

func testFailedUpdateLeavesNoTrace(t *testing.T, s engine.Store) {
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx engine.Tx) error {
		if err := tx.AppendEvent(record("evt_x", "inq_x", t0)); err != nil {
			return err
		}
		if err := tx.AppendEvent(related("evt_xs", "inq_x", t0)); err != nil {
			return err
		}
		if err := tx.SaveInquiry(&engine.Inquiry{ID: "inq_x", Status: engine.StatusPending, EventCount: 1}); err != nil {
			return err
		}
		if err := tx.AppendChange(&engine.Change{InquiryID: "inq_x", EventID: "evt_x", ToStatus: engine.StatusPending, At: t0}); err != nil {
			return err
		}
		if _, err := tx.AppendDeadLetter(&engine.DeadLetter{ReceivedAt: t0, Body: []byte("{"), Reason: "x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if recs, _ := s.Events(ctx, "inq_x"); len(recs) != 0 {
		t.Errorf("event kept after failed update")
	}
	if recs, _ := s.RelatedEvents(ctx, "inq_x"); len(recs) != 0 {
		t.Errorf("related event kept after failed update: %+v", recs)
	}
	if _, err := s.GetInquiry(ctx, "inq_x"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetInquiry after failed update = %v, want ErrNotFound", err)
	}
	if cs, _ := s.Changes(ctx, 0, 10); len(cs) != 0 {
		t.Errorf("change kept after failed update: %v", cs)
	}
	update(t, s, func(tx engine.Tx) error {
		if red, _ := tx.RecordDelivery("evt_x", 1, [32]byte{}); red.Seen {
			return errors.New("event id still known after failed update")
		}
		return nil
	})
}

func testProjections(t *testing.T, s engine.Store) {
	want := &engine.Inquiry{
		ID: "inq_p", Status: engine.StatusApproved, Decision: engine.StatusApproved,
		Redacted: true, RedactedAt: t0.Add(time.Hour), ReferenceID: "user-1", AccountID: "act_1",
		TemplateID: "itmpl_1", Tags: []string{}, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
		LastEventID: "evt_9", EventCount: 9,
		Anomalies: []engine.Anomaly{{EventID: "evt_4", Kind: engine.AnomalyRejected, From: engine.StatusApproved, To: engine.StatusPending}},
	}
	update(t, s, func(tx engine.Tx) error {
		if got, err := tx.Inquiry("inq_p"); err != nil || got != nil {
			return fmt.Errorf("Inquiry of unknown id = %v, %v; want nil, nil", got, err)
		}
		if err := tx.SaveInquiry(&engine.Inquiry{ID: "inq_p", Status: engine.StatusCreated}); err != nil {
			return err
		}
		if err := tx.SaveInquiry(want); err != nil {
			return err
		}
		got, err := tx.Inquiry("inq_p")
		if err != nil {
			return err
		}
		return sameJSON(got, want)
	})
	got, err := s.GetInquiry(ctx, "inq_p")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameJSON(got, want); err != nil {
		t.Error(err)
	}
	if _, err := s.GetInquiry(ctx, "inq_none"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetInquiry(unknown) = %v, want ErrNotFound", err)
	}
}

func sameJSON(got, want any) error {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		return fmt.Errorf("got  %s\nwant %s", g, w)
	}
	return nil
}

func testChangeFeed(t *testing.T, s engine.Store) {
	var want []engine.Change
	for i := range 7 {
		update(t, s, func(tx engine.Tx) error {
			c := &engine.Change{
				InquiryID: "inq_c", EventID: fmt.Sprintf("evt_%d", i), FromStatus: engine.StatusCreated,
				ToStatus: engine.StatusPending, Decision: "", Redacted: i%2 == 1, At: t0.Add(time.Duration(i) * time.Millisecond),
			}
			if err := tx.AppendChange(c); err != nil {
				return err
			}
			want = append(want, *c)
			return nil
		})
	}
	for i := 1; i < len(want); i++ {
		if want[i].Seq <= want[i-1].Seq {
			t.Fatalf("change seqs not increasing: %d then %d", want[i-1].Seq, want[i].Seq)
		}
	}
	var got []engine.Change
	for after := int64(0); ; {
		page, err := s.Changes(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].Seq
	}
	if err := sameJSON(got, want); err != nil {
		t.Errorf("paging the feed: %v", err)
	}
}

func testReplaceBodies(t *testing.T, s engine.Store) {
	r1, r2, other := record("evt_1", "inq_r", t0), record("evt_2", "inq_r", t0.Add(time.Minute)), record("evt_3", "inq_o", t0)
	session, otherSession := related("evt_4", "inq_r", t0), related("evt_5", "inq_o", t0)
	update(t, s, func(tx engine.Tx) error {
		for _, r := range []*engine.Record{r1, session, r2, other, otherSession} {
			if err := tx.AppendEvent(r); err != nil {
				return err
			}
		}
		return tx.ReplaceBodies([]string{"inq_r", session.ObjectID}, engine.Scrub)
	})
	recs, err := s.RelatedEvents(ctx, "inq_r")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].EventID != session.EventID || recs[0].RelatedInquiryID != "inq_r" || recs[0].ObjectType != "inquiry-session" {
		t.Fatalf("related events of inq_r: %+v, want %s", recs, session.EventID)
	}
	if bytes.Contains(recs[0].Body, []byte("192.0.2.4")) || !bytes.Contains(recs[0].Body, []byte(`"ip-address":null`)) {
		t.Errorf("related event's body not scrubbed: %s", recs[0].Body)
	}
	if recs[0].SHA256 != sha256.Sum256(related(session.EventID, "inq_r", t0).Body) {
		t.Errorf("related event: SHA-256 of the original body was not kept")
	}
	recs, err = s.RelatedEvents(ctx, "inq_o")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !bytes.Equal(recs[0].Body, otherSession.Body) {
		t.Errorf("another inquiry's related body was touched: %+v", recs)
	}
	recs, err = s.Events(ctx, "inq_r")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if bytes.Contains(r.Body, []byte("Jane")) || bytes.Contains(r.Body, []byte("vip")) {
			t.Errorf("%s: body not scrubbed: %s", r.EventID, r.Body)
		}
		if r.SHA256 != sha256.Sum256(record(r.EventID, "inq_r", r.CreatedAt).Body) {
			t.Errorf("%s: SHA-256 of the original body was not kept", r.EventID)
		}
	}
	recs, _ = s.Events(ctx, "inq_o")
	if len(recs) != 1 || !bytes.Equal(recs[0].Body, other.Body) {
		t.Errorf("another inquiry's body was touched")
	}
}

func testListing(t *testing.T, s engine.Store) {
	statuses := []engine.Status{engine.StatusPending, engine.StatusApproved, engine.StatusDeclined}
	update(t, s, func(tx engine.Tx) error {
		for i := range 30 {
			st := statuses[i%3]
			inq := &engine.Inquiry{
				ID: fmt.Sprintf("inq_%02d", i), Status: st, Redacted: i%5 == 0,
				UpdatedAt:  t0.Add(time.Duration(i/2) * time.Minute), // pairs share an instant
				EventCount: 1,
			}
			if st != engine.StatusPending {
				inq.Decision = st
			}
			if err := tx.SaveInquiry(inq); err != nil {
				return err
			}
		}
		return nil
	})
	yes := true
	for _, tc := range []struct {
		name  string
		q     engine.Query
		count int
	}{
		{"all", engine.Query{Limit: 7}, 30},
		{"status", engine.Query{Status: engine.StatusApproved, Limit: 4}, 10},
		{"decision", engine.Query{Decision: engine.StatusDeclined, Limit: 3}, 10},
		{"redacted", engine.Query{Redacted: &yes, Limit: 2}, 6},
		{"default limit", engine.Query{}, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var all []*engine.Inquiry
			q := tc.q
			for page := 0; ; page++ {
				got, next, err := s.Inquiries(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if lim := max(q.Limit, 1); q.Limit > 0 && len(got) > lim {
					t.Fatalf("page of %d > limit %d", len(got), lim)
				}
				all = append(all, got...)
				if next == "" || page > 40 {
					break
				}
				q.Cursor = next
			}
			if len(all) != tc.count {
				t.Fatalf("listed %d inquiries, want %d", len(all), tc.count)
			}
			seen := map[string]bool{}
			for i, inq := range all {
				if seen[inq.ID] || !tc.q.Matches(inq) {
					t.Fatalf("%s listed twice or does not match", inq.ID)
				}
				seen[inq.ID] = true
				if i > 0 {
					prev := all[i-1]
					if prev.UpdatedAt.Before(inq.UpdatedAt) || (prev.UpdatedAt.Equal(inq.UpdatedAt) && prev.ID < inq.ID) {
						t.Fatalf("order: %s (%v) before %s (%v)", prev.ID, prev.UpdatedAt, inq.ID, inq.UpdatedAt)
					}
				}
			}
		})
	}
	if _, _, err := s.Inquiries(ctx, engine.Query{Cursor: "%%%"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("bad cursor: err = %v, want ErrInvalid", err)
	}
}

// history is a small inquiry history with a late event, a re-decision and
// a redaction.
func history(inquiryID string) [][]byte {
	return [][]byte{
		Body("evt_h1", engine.EventCreated, inquiryID, engine.StatusCreated, t0),
		Body("evt_h2", engine.EventStarted, inquiryID, engine.StatusPending, t0.Add(time.Minute)),
		Body("evt_h3", engine.EventCompleted, inquiryID, engine.StatusCompleted, t0.Add(2*time.Minute)),
		Body("evt_h4", engine.EventApproved, inquiryID, engine.StatusApproved, t0.Add(3*time.Minute)),
		Body("evt_h5", engine.EventDeclined, inquiryID, engine.StatusDeclined, t0.Add(4*time.Minute)),
		Body("evt_h6", engine.EventRedacted, inquiryID, engine.StatusDeclined, t0.Add(5*time.Minute)),
	}
}

func testIngestHistoryOutOfOrder(t *testing.T, s engine.Store) {
	eng := engine.New(s, engine.Policy{})
	bodies := history("inq_h")
	var events []*engine.Event
	for _, i := range []int{3, 0, 5, 1, 4, 2, 3} {
		if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodies[i], ReceivedAt: t0.Add(time.Hour), AttemptsMade: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range bodies {
		ev, err := engine.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	want, _ := engine.Fold("inq_h", events, engine.Policy{})
	got, err := eng.Inquiry(ctx, "inq_h")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameJSON(got, want); err != nil {
		t.Errorf("projection is not the fold of the log: %v", err)
	}
	recs, _ := s.Events(ctx, "inq_h")
	for _, r := range recs {
		if bytes.Contains(r.Body, []byte("Jane")) {
			t.Errorf("%s kept PII after redaction", r.EventID)
		}
	}
	changes, _ := s.Changes(ctx, 0, 100)
	if len(changes) == 0 || !changes[len(changes)-1].Redacted {
		t.Errorf("last change %v does not record the redaction", changes)
	}
}

func testConcurrentDuplicates(t *testing.T, s engine.Store) {
	eng := engine.New(s, engine.Policy{})
	body := Body("evt_d", engine.EventStarted, "inq_d", engine.StatusPending, t0)
	const n = 64
	var wg sync.WaitGroup
	results := make([]engine.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: t0, AttemptsMade: i % 5})
		})
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("delivery %d: %v", i, errs[i])
		}
		if !results[i].Duplicate {
			fresh++
		}
		if got := results[i].Outcome; got != engine.OutcomeApplied {
			t.Errorf("delivery %d: outcome %q, want applied (duplicates report the first outcome)", i, got)
		}
	}
	if fresh != 1 {
		t.Errorf("%d deliveries stored the event, want exactly 1", fresh)
	}
	recs, _ := s.Events(ctx, "inq_d")
	if len(recs) != 1 {
		t.Fatalf("stored %d records, want 1", len(recs))
	}
	if recs[0].Deliveries != n {
		t.Errorf("recorded %d deliveries, want %d", recs[0].Deliveries, n)
	}
	if recs[0].AttemptsMade != 4 {
		t.Errorf("attempts made = %d, want the highest seen, 4", recs[0].AttemptsMade)
	}
}

func testForget(t *testing.T, s engine.Store) {
	// act_1 ← inq_1 ← ver_1, ver_2; inq_2 ← ver_3; a cycle ver_2 ↔ inq_1
	// must not loop.
	links := []engine.Link{
		{Object: "inq_1", Owner: "act_1"}, {Object: "ver_1", Owner: "inq_1"}, {Object: "ver_2", Owner: "inq_1"},
		{Object: "inq_1", Owner: "ver_2"}, {Object: "ver_3", Owner: "inq_2"},
	}
	update(t, s, func(tx engine.Tx) error {
		unknown, err := tx.AddLinks(links)
		if err != nil {
			return err
		}
		if len(unknown) != len(links) {
			return fmt.Errorf("AddLinks of new links reported %v unknown, want all %d", unknown, len(links))
		}
		_, err = tx.AddLinks(links[:2]) // known links are no error
		return err
	})
	forget := func(id string, mode engine.Forget) []string {
		t.Helper()
		var ids []string
		update(t, s, func(tx engine.Tx) error {
			rose, err := tx.Forget(id, mode)
			ids = ids[:0]
			for _, f := range rose {
				if f.Mode != mode {
					return fmt.Errorf("Forget(%s) gave %s mode %d, want %d", id, f.ID, f.Mode, mode)
				}
				ids = append(ids, f.ID)
			}
			return err
		})
		slices.Sort(ids)
		return ids
	}
	if got, want := forget("inq_1", engine.ForgetKeepReference), []string{"inq_1", "ver_1", "ver_2"}; !slices.Equal(got, want) {
		t.Errorf("Forget(inq_1) rose %v, want %v", got, want)
	}
	if got := forget("inq_1", engine.ForgetKeepReference); len(got) != 0 {
		t.Errorf("Forget(inq_1) again rose %v, want none", got)
	}
	if got, want := forget("act_1", engine.ForgetAll), []string{"act_1", "inq_1", "ver_1", "ver_2"}; !slices.Equal(got, want) {
		t.Errorf("Forget(act_1) rose %v, want %v", got, want)
	}
	if got := forget("inq_1", engine.ForgetKeepReference); len(got) != 0 {
		t.Errorf("a lower mode rose %v, want none", got)
	}
	update(t, s, func(tx engine.Tx) error {
		for id, want := range map[string]engine.Forget{"ver_1": engine.ForgetAll, "inq_2": engine.ForgetNone, "ver_3": engine.ForgetNone} {
			if got, err := tx.Forgetting(id); err != nil || got != want {
				return fmt.Errorf("Forgetting(%s) = %d, %v; want %d", id, got, err, want)
			}
		}
		return nil
	})
	// A failed update keeps neither its links nor what it forgot.
	boom := errors.New("boom")
	if err := s.Update(ctx, func(tx engine.Tx) error {
		if _, err := tx.AddLinks([]engine.Link{{Object: "ver_9", Owner: "inq_2"}}); err != nil {
			return err
		}
		if _, err := tx.Forget("inq_2", engine.ForgetAll); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got, want := forget("inq_2", engine.ForgetKeepReference), []string{"inq_2", "ver_3"}; !slices.Equal(got, want) {
		t.Errorf("after a failed update, Forget(inq_2) rose %v, want %v", got, want)
	}
	// The link of the failed update, added again, is stored this time
	// (a store that caches links must have forgotten the failed one).
	update(t, s, func(tx engine.Tx) error {
		unknown, err := tx.AddLinks([]engine.Link{{Object: "ver_9", Owner: "inq_2"}})
		if err == nil && len(unknown) != 1 {
			err = fmt.Errorf("AddLinks of a link whose update failed reported %v unknown, want it", unknown)
		}
		return err
	})
	if got, want := forget("inq_2", engine.ForgetAll), []string{"inq_2", "ver_3", "ver_9"}; !slices.Equal(got, want) {
		t.Errorf("Forget(inq_2) after the link was added again rose %v, want %v", got, want)
	}
	// Many links in one call, more than one statement holds, some known.
	var many []engine.Link
	for i := range 20 {
		many = append(many, engine.Link{Object: fmt.Sprintf("ver_m%02d", i), Owner: "inq_m"})
	}
	update(t, s, func(tx engine.Tx) error { _, err := tx.AddLinks(many[:5]); return err })
	update(t, s, func(tx engine.Tx) error { _, err := tx.AddLinks(many); return err })
	if got := forget("inq_m", engine.ForgetAll); len(got) != len(many)+1 {
		t.Errorf("Forget(inq_m) rose %d objects, want %d: %v", len(got), len(many)+1, got)
	}
}

func testReplaceDeadLetters(t *testing.T, s engine.Store) {
	bodies := [][]byte{
		[]byte(`{"inquiry": "inq_dead1", "name": "Jane Doe"}`),
		[]byte(`not json inq_dead1 Jane Doe`),
		[]byte(`{"inquiry": "inq_other", "name": "John Roe"}`),
	}
	update(t, s, func(tx engine.Tx) error {
		for _, b := range bodies {
			if _, err := tx.AppendDeadLetter(&engine.DeadLetter{ReceivedAt: t0, Body: b, SHA256: sha256.Sum256(b), Reason: "test", Deliveries: 1}); err != nil {
				return err
			}
		}
		return tx.ReplaceDeadLetters([]string{"inq_dead1"}, engine.ScrubDeadLetter)
	})
	lister, ok := s.(interface {
		DeadLetters(context.Context, int) ([]engine.DeadLetter, error)
	})
	if !ok {
		mem, ok := s.(*engine.MemoryStore)
		if !ok {
			t.Fatalf("%T lists no dead letters: give it DeadLetters(ctx, limit)", s)
		}
		checkDeadLetters(t, mem.DeadLetters(), bodies)
		return
	}
	got, err := lister.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, got, bodies)
}

func checkDeadLetters(t *testing.T, got []engine.DeadLetter, orig [][]byte) {
	t.Helper()
	if len(got) != len(orig) {
		t.Fatalf("%d dead letters, want %d", len(got), len(orig))
	}
	slices.SortFunc(got, func(a, b engine.DeadLetter) int { return cmp.Compare(a.Seq, b.Seq) })
	for i, d := range got {
		if d.SHA256 != sha256.Sum256(orig[i]) {
			t.Errorf("dead letter %d: SHA-256 not kept", i)
		}
	}
	if bytes.Contains(got[0].Body, []byte("Jane")) || !json.Valid(got[0].Body) {
		t.Errorf("JSON dead letter naming the id not scrubbed: %s", got[0].Body)
	}
	if string(got[1].Body) != "null" {
		t.Errorf("non-JSON dead letter naming the id = %q, want null", got[1].Body)
	}
	if !bytes.Equal(got[2].Body, orig[2]) {
		t.Errorf("dead letter of another inquiry was touched: %s", got[2].Body)
	}
}

func testDeadLettersOncePerBody(t *testing.T, s engine.Store) {
	a, b := []byte("not json"), []byte("not json either")
	var dups []bool
	for _, body := range [][]byte{a, b, a, a} {
		update(t, s, func(tx engine.Tx) error {
			dup, err := tx.AppendDeadLetter(&engine.DeadLetter{ReceivedAt: t0, Body: body, SHA256: sha256.Sum256(body), Reason: "x", Deliveries: 1})
			dups = append(dups, dup)
			return err
		})
	}
	if want := []bool{false, false, true, true}; !slices.Equal(dups, want) {
		t.Errorf("duplicate = %v, want %v", dups, want)
	}
	var got []engine.DeadLetter
	switch st := s.(type) {
	case *engine.MemoryStore:
		got = st.DeadLetters()
	case interface {
		DeadLetters(context.Context, int) ([]engine.DeadLetter, error)
	}:
		var err error
		if got, err = st.DeadLetters(ctx, 10); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("%T lists no dead letters", s)
	}
	deliveries := map[string]int{}
	for _, d := range got {
		deliveries[string(d.Body)] = d.Deliveries
	}
	if want := map[string]int{string(a): 3, string(b): 1}; !maps.Equal(deliveries, want) {
		t.Errorf("dead letters and their deliveries = %v, want %v", deliveries, want)
	}
}

// conflicts lists the conflicts s keeps.
func conflicts(t *testing.T, s engine.Store) []engine.Conflict {
	t.Helper()
	switch st := s.(type) {
	case *engine.MemoryStore:
		return st.Conflicts()
	case interface {
		Conflicts(context.Context, int) ([]engine.Conflict, error)
	}:
		got, err := st.Conflicts(ctx, engine.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	t.Fatalf("%T lists no conflicts", s)
	return nil
}

// testConflictingRedelivery: a stored event id delivered with another
// body is a duplicate whose body is kept once as a conflict, the first
// body still folded, and the inquiry notes an anomaly that a fold of the
// stored log gives too. The same event in another key inflection is a
// plain duplicate.
func testConflictingRedelivery(t *testing.T, s engine.Store) {
	eng := engine.New(s, engine.Policy{})
	first := Body("evt_cf", engine.EventStarted, "inq_cf", engine.StatusPending, t0)
	other := Body("evt_cf", engine.EventApproved, "inq_cf", engine.StatusApproved, t0.Add(time.Second))
	snake := bytes.ReplaceAll(bytes.ReplaceAll(first, []byte(`"created-at"`), []byte(`"created_at"`)),
		[]byte(`"name-first"`), []byte(`"name_first"`))
	tests := []struct {
		body                          []byte
		duplicate, conflict, repeated bool
	}{
		{first, false, false, false},
		{other, true, true, false},
		{other, true, true, true},
		{first, true, false, false},
		{snake, true, false, false},
	}
	for i, tt := range tests {
		res, err := eng.Ingest(ctx, engine.Delivery{Body: tt.body, ReceivedAt: t0.Add(time.Hour), AttemptsMade: 1})
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if res.Duplicate != tt.duplicate || res.Conflict != tt.conflict || res.ConflictRepeated != tt.repeated {
			t.Errorf("delivery %d: duplicate %v, conflict %v, repeated %v; want %v, %v, %v",
				i, res.Duplicate, res.Conflict, res.ConflictRepeated, tt.duplicate, tt.conflict, tt.repeated)
		}
		if res.Outcome != engine.OutcomeApplied {
			t.Errorf("delivery %d: outcome %q, want the first one's, applied", i, res.Outcome)
		}
	}
	recs, err := s.Events(ctx, "inq_cf")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !bytes.Equal(recs[0].Body, first) || recs[0].Deliveries != 3 || !recs[0].Conflicted {
		t.Fatalf("stored %d events (first %+v), want the first body once, delivered 3 times, conflicted", len(recs), recs)
	}
	got := conflicts(t, s)
	if len(got) != 1 {
		t.Fatalf("%d conflicts kept, want 1", len(got))
	}
	c := got[0]
	if c.EventID != "evt_cf" || c.ObjectID != "inq_cf" || c.BodyObjectID != "inq_cf" || c.SHA256 != sha256.Sum256(other) ||
		!bytes.Equal(c.Body, other) || c.Deliveries != 2 || !c.ReceivedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("conflict kept: %+v", c)
	}
	inq, err := eng.Inquiry(ctx, "inq_cf")
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.Anomaly{{EventID: "evt_cf", Kind: engine.AnomalyConflictingRedelivery}}
	if inq.Status != engine.StatusPending || !slices.Equal(inq.Anomalies, want) {
		t.Errorf("projection: status %s, anomalies %+v; want pending, %+v", inq.Status, inq.Anomalies, want)
	}
	fold, _, err := engine.FoldRecords("inq_cf", recs, engine.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameJSON(inq, fold); err != nil {
		t.Errorf("projection is not the fold of the stored log: %v", err)
	}
}

// testProjectionTimesAtFullPrecision: a projection's times read back as
// they were saved, below the millisecond too, so that the in-order fast
// path compares a new event with the created-at the fold saw.
func testProjectionTimesAtFullPrecision(t *testing.T, s engine.Store) {
	at := t0.Add(400*time.Microsecond + 7)
	saved := &engine.Inquiry{ID: "inq_ns", Status: engine.StatusPending, CreatedAt: at, UpdatedAt: at.Add(time.Microsecond),
		Redacted: true, RedactedAt: at.Add(time.Nanosecond), EventCount: 2, LastEventID: "evt_2", Tags: []string{}}
	update(t, s, func(tx engine.Tx) error { return tx.SaveInquiry(saved) })
	check := func(where string, got *engine.Inquiry) {
		t.Helper()
		if !got.CreatedAt.Equal(saved.CreatedAt) || !got.UpdatedAt.Equal(saved.UpdatedAt) || !got.RedactedAt.Equal(saved.RedactedAt) {
			t.Errorf("%s: created %v, updated %v, redacted %v; want %v, %v, %v", where,
				got.CreatedAt, got.UpdatedAt, got.RedactedAt, saved.CreatedAt, saved.UpdatedAt, saved.RedactedAt)
		}
	}
	got, err := s.GetInquiry(ctx, "inq_ns")
	if err != nil {
		t.Fatal(err)
	}
	check("GetInquiry", got)
	update(t, s, func(tx engine.Tx) error {
		got, err := tx.Inquiry("inq_ns")
		if err == nil {
			check("Tx.Inquiry", got)
		}
		return err
	})
}

// WithoutRelationships drops payload.data.relationships from a body, as
// Persona's attribute allowlist can: the object then names no owner, and
// only the inquiry that lists it says whose it is.
func WithoutRelationships(tb testing.TB, body []byte) []byte {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		tb.Fatal(err)
	}
	delete(doc["data"].(map[string]any)["attributes"].(map[string]any)["payload"].(map[string]any)["data"].(map[string]any), "relationships")
	out, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
