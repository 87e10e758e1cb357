package storetest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// UserBody returns a Persona webhook body for an event of an inquiry that
// belongs to the application's user referenceID, Persona account
// accountID and template itmpl_lookup, created at created, with personal
// data in its attributes.
func UserBody(eventID, name, inquiryID, referenceID, accountID string, status engine.Status, created, at time.Time) []byte {
	b, err := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event", "id": eventID,
		"attributes": map[string]any{
			"name": name, "created-at": at.UTC().Format(engine.TimeFormat),
			"payload": map[string]any{"data": map[string]any{
				"type": "inquiry", "id": inquiryID,
				"attributes": map[string]any{"status": status, "reference-id": referenceID,
					"created-at": created.UTC().Format(engine.TimeFormat), "name-first": "Jane"},
				"relationships": map[string]any{
					"account":          map[string]any{"data": map[string]any{"type": "account", "id": accountID}},
					"inquiry-template": map[string]any{"data": map[string]any{"type": "inquiry-template", "id": "itmpl_lookup"}},
				},
			}},
		},
	}})
	if err != nil {
		panic(err)
	}
	return b
}

// AccountRedactedBody returns Persona's account.redacted for accountID:
// it forgets the account's inquiries' reference-ids.
func AccountRedactedBody(eventID, accountID string, at time.Time) []byte {
	b, err := json.Marshal(map[string]any{"data": map[string]any{
		"type": "event", "id": eventID,
		"attributes": map[string]any{
			"name": "account.redacted", "created-at": at.UTC().Format(engine.TimeFormat),
			"payload": map[string]any{"data": map[string]any{
				"type": "account", "id": accountID,
				"attributes": map[string]any{"redacted-at": at.UTC().Format(engine.TimeFormat), "reference-id": nil},
			}},
		},
	}})
	if err != nil {
		panic(err)
	}
	return b
}

// testListingByUser: listings by reference, account and template,
// alone and with the other filters, page by page, newest created first
// at the millisecond (the updated instant while the created one is
// unknown), ties by id.
func testListingByUser(t *testing.T, s engine.Store) {
	var saved []*engine.Inquiry
	update(t, s, func(tx engine.Tx) error {
		for i := range 24 {
			inq := &engine.Inquiry{
				ID:         fmt.Sprintf("inq_u%02d", i),
				Status:     []engine.Status{engine.StatusPending, engine.StatusApproved, engine.StatusDeclined}[i%3],
				Redacted:   i%4 == 0,
				AccountID:  fmt.Sprintf("act_%d", (i/2)%2),
				TemplateID: fmt.Sprintf("itmpl_%d", i%3),
				// Updated newest last, created newest first: the orders
				// differ, so a listing in the wrong one shows.
				UpdatedAt:  t0.Add(time.Duration(i) * time.Hour),
				CreatedAt:  t0.Add(-time.Duration(i/2)*time.Minute + time.Duration(i%2)*300*time.Microsecond),
				EventCount: 1, Tags: []string{},
			}
			switch {
			case i%6 == 5:
				inq.CreatedAt = time.Time{} // no event showed it: listed at its updated instant
			case i%5 == 0:
				inq.CreatedAt = t0.Add(-time.Hour) // one instant for several: ties by id
			}
			if i%4 != 3 {
				inq.ReferenceID = fmt.Sprintf("user-%d", i%2)
			}
			if inq.Status != engine.StatusPending {
				inq.Decision = inq.Status
			}
			if err := tx.SaveInquiry(inq); err != nil {
				return err
			}
			saved = append(saved, inq)
		}
		return nil
	})
	yes, no := true, false
	for _, tc := range []struct {
		name string
		q    engine.Query
	}{
		{"reference", engine.Query{ReferenceID: "user-0", Limit: 2}},
		{"reference one page", engine.Query{ReferenceID: "user-1"}},
		{"account", engine.Query{AccountID: "act_1", Limit: 3}},
		{"template", engine.Query{TemplateID: "itmpl_2", Limit: 2}},
		{"reference and status", engine.Query{ReferenceID: "user-1", Status: engine.StatusDeclined, Limit: 1}},
		{"reference and decision", engine.Query{ReferenceID: "user-0", Decision: engine.StatusApproved, Limit: 1}},
		{"reference and redacted", engine.Query{ReferenceID: "user-0", Redacted: &yes, Limit: 1}},
		{"reference and not redacted", engine.Query{ReferenceID: "user-0", Redacted: &no, Limit: 3}},
		{"reference, account and template", engine.Query{ReferenceID: "user-1", AccountID: "act_0", TemplateID: "itmpl_1", Limit: 1}},
		{"account and status", engine.Query{AccountID: "act_0", Status: engine.StatusDeclined, Limit: 2}},
		{"unknown reference", engine.Query{ReferenceID: "user-9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, inq := range saved {
				if tc.q.Matches(inq) {
					want = append(want, inq.ID)
				}
			}
			slices.SortFunc(want, func(a, b string) int {
				ia, ib := savedByID(saved, a), savedByID(saved, b)
				if c := cmp.Compare(ib.ListedAt(true).UnixMilli(), ia.ListedAt(true).UnixMilli()); c != 0 {
					return c
				}
				return cmp.Compare(b, a)
			})
			if len(want) == 0 && tc.q.ReferenceID != "user-9" {
				t.Fatal("the case selects nothing: it tests nothing")
			}
			got := listAll(t, s, tc.q)
			if !slices.Equal(got, want) {
				t.Errorf("listed %v\nwant   %v (newest created first, ties by id descending)", got, want)
			}
		})
	}

	// A cursor is a position in one order: read in the other, it would
	// skip and repeat inquiries.
	_, byUpdated, err := s.Inquiries(ctx, engine.Query{Limit: 1})
	if err != nil || byUpdated == "" {
		t.Fatalf("first page: cursor %q, err %v", byUpdated, err)
	}
	_, byCreated, err := s.Inquiries(ctx, engine.Query{AccountID: "act_0", Limit: 1})
	if err != nil || byCreated == "" {
		t.Fatalf("first page by account: cursor %q, err %v", byCreated, err)
	}
	for _, q := range []engine.Query{
		{ReferenceID: "user-0", Cursor: byUpdated},
		{Cursor: byCreated},
		{Status: engine.StatusApproved, Cursor: byCreated},
	} {
		if _, _, err := s.Inquiries(ctx, q); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("Inquiries(%+v) with a cursor of the other order: err = %v, want ErrInvalid", q, err)
		}
	}
}

func savedByID(saved []*engine.Inquiry, id string) *engine.Inquiry {
	i := slices.IndexFunc(saved, func(inq *engine.Inquiry) bool { return inq.ID == id })
	return saved[i]
}

// listAll pages through a listing and returns the ids listed.
func listAll(t *testing.T, s engine.Reader, q engine.Query) []string {
	t.Helper()
	var ids []string
	for page := 0; ; page++ {
		got, next, err := s.Inquiries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if q.Limit > 0 && len(got) > q.Limit {
			t.Fatalf("page of %d > limit %d", len(got), q.Limit)
		}
		for _, inq := range got {
			ids = append(ids, inq.ID)
		}
		if next == "" {
			return ids
		}
		if page > 50 {
			t.Fatal("the listing does not end")
		}
		q.Cursor = next
	}
}

// testLookupForgetsReference: an inquiry whose reference-id was forgotten
// (its account was redacted) is not found by it any more, but still by
// its account; one redacted on its own keeps it, as Persona does, and is
// found by it, marked redacted.
func testLookupForgetsReference(t *testing.T, s engine.Store) {
	eng := engine.New(s, engine.Policy{})
	deliver := func(body []byte) {
		t.Helper()
		if _, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: t0.Add(time.Hour), AttemptsMade: 1}); err != nil {
			t.Fatal(err)
		}
	}
	deliver(UserBody("evt_f1", engine.EventCreated, "inq_f1", "user-f", "act_f", engine.StatusCreated, t0, t0))
	deliver(UserBody("evt_f2", engine.EventCreated, "inq_f2", "user-f", "act_g", engine.StatusCreated, t0.Add(time.Minute), t0.Add(time.Minute)))
	deliver(UserBody("evt_f3", engine.EventApproved, "inq_f2", "user-f", "act_g", engine.StatusApproved, t0.Add(time.Minute), t0.Add(2*time.Minute)))
	if got, want := listAll(t, s, engine.Query{ReferenceID: "user-f"}), []string{"inq_f2", "inq_f1"}; !slices.Equal(got, want) {
		t.Fatalf("by reference before any redaction: %v, want %v", got, want)
	}

	deliver(AccountRedactedBody("evt_f4", "act_f", t0.Add(3*time.Minute)))
	if got, want := listAll(t, s, engine.Query{ReferenceID: "user-f"}), []string{"inq_f2"}; !slices.Equal(got, want) {
		t.Errorf("by reference after its account was redacted: %v, want %v", got, want)
	}
	if got, want := listAll(t, s, engine.Query{AccountID: "act_f"}), []string{"inq_f1"}; !slices.Equal(got, want) {
		t.Errorf("by account after its redaction: %v, want %v", got, want)
	}
	if inq, err := s.GetInquiry(ctx, "inq_f1"); err != nil || inq.ReferenceID != "" {
		t.Errorf("projection after the account's redaction: %+v, %v; want no reference-id", inq, err)
	}

	deliver(UserBody("evt_f5", engine.EventRedacted, "inq_f2", "user-f", "act_g", engine.StatusApproved, t0.Add(time.Minute), t0.Add(4*time.Minute)))
	page, _, err := s.Inquiries(ctx, engine.Query{ReferenceID: "user-f"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].ID != "inq_f2" || !page[0].Redacted || page[0].Decision != engine.StatusApproved {
		t.Errorf("by reference after the inquiry's own redaction: %s; want inq_f2, redacted, still approved", jsonString(page))
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
