package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/personad/personad/engine"
)

// Contents is what CheckConsistent read from a store.
type Contents struct {
	Inquiries map[string]*engine.Inquiry // every projection, by id
	Events    map[string][]engine.Record // every inquiry's stored events, by inquiry id
}

// CheckConsistent reads every projection, its events and the whole change
// feed of r, and fails tb unless the store is consistent: each projection
// is the fold of its stored events under p (so no event is half-applied),
// the change feed numbers its changes 1, 2, 3… with no gap or repeat, each
// inquiry's change starts where its previous one ended and repeats no
// state, and the last one describes the projection. Crash tests call it
// on what a killed process left behind.
func CheckConsistent(tb testing.TB, r engine.Reader, p engine.Policy) Contents {
	tb.Helper()
	ctx := context.Background()
	c := Contents{Inquiries: map[string]*engine.Inquiry{}, Events: map[string][]engine.Record{}}
	q := engine.Query{Limit: engine.MaxLimit}
	for {
		page, next, err := r.Inquiries(ctx, q)
		if err != nil {
			tb.Fatal(err)
		}
		for _, inq := range page {
			recs, err := r.Events(ctx, inq.ID)
			if err != nil {
				tb.Fatal(err)
			}
			c.Inquiries[inq.ID], c.Events[inq.ID] = inq, recs
			want, _, err := engine.FoldRecords(inq.ID, recs, p)
			if err != nil {
				tb.Fatal(err)
			}
			if got, want := jsonOf(tb, inq), jsonOf(tb, want); got != want {
				tb.Errorf("%s: projection is not the fold of its log:\ngot  %s\nwant %s", inq.ID, got, want)
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}

	last := map[string]engine.Change{}
	for after := int64(0); ; {
		page, err := r.Changes(ctx, after, engine.MaxLimit)
		if err != nil {
			tb.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, ch := range page {
			if ch.Seq != after+1 {
				tb.Fatalf("change feed jumps from %d to %d", after, ch.Seq)
			}
			after = ch.Seq
			prev, seen := last[ch.InquiryID]
			if ch.FromStatus != prev.ToStatus {
				tb.Errorf("change %d of %s starts at %q, the previous one ended at %q", ch.Seq, ch.InquiryID, ch.FromStatus, prev.ToStatus)
			}
			if seen && ch.ToStatus == prev.ToStatus && ch.Decision == prev.Decision && ch.Redacted == prev.Redacted {
				tb.Errorf("change %d of %s repeats change %d", ch.Seq, ch.InquiryID, prev.Seq)
			}
			last[ch.InquiryID] = ch
		}
	}
	for id, inq := range c.Inquiries {
		if ch := last[id]; ch.ToStatus != inq.Status || ch.Decision != inq.Decision || ch.Redacted != inq.Redacted {
			tb.Errorf("%s: last change %+v does not describe the projection", id, ch)
		}
	}
	return c
}

func jsonOf(tb testing.TB, inq *engine.Inquiry) string {
	tb.Helper()
	b, err := json.Marshal(inq)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
