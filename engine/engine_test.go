package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

var ctx = context.Background()

func deliver(t *testing.T, eng *engine.Engine, body []byte) engine.Result {
	t.Helper()
	res, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Date(2024, 3, 16, 0, 0, 0, 0, time.UTC), AttemptsMade: 1})
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

func TestIngestResult(t *testing.T) {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
	created := fixture(t, "inquiry.created.json")
	res := deliver(t, eng, created)
	want := engine.Result{EventID: "evt_qmO807C6J0v9NAOwiuUhYREG", Name: engine.EventCreated, InquiryID: "inq_kT4xVnR2bPmYwL9sTgD3cExZ",
		Outcome: engine.OutcomeApplied, After: engine.StatusCreated}
	if res.Change == nil || res.Change.Seq != 1 || res.Change.ToStatus != engine.StatusCreated {
		t.Errorf("change = %+v, want the first change to created", res.Change)
	}
	res.Change = nil
	if !reflect.DeepEqual(res, want) {
		t.Errorf("first delivery: got %+v\nwant %+v", res, want)
	}
	again := deliver(t, eng, created)
	want.Duplicate, want.Before = true, engine.StatusCreated
	if !reflect.DeepEqual(again, want) {
		t.Errorf("duplicate: got %+v\nwant %+v", again, want)
	}
	other := deliver(t, eng, fixture(t, "account.created.json"))
	if other.Outcome != engine.OutcomeUnknown || other.InquiryID != "" || other.Change != nil {
		t.Errorf("account event: %+v, want outcome unknown and no inquiry", other)
	}
}

func TestIngestMalformedIsKept(t *testing.T) {
	store := engine.NewMemoryStore()
	eng := engine.New(store, engine.Policy{})
	body := []byte(`{"data":{"type":"event","id":"evt_1"}}`)
	_, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Unix(1, 0)})
	if !errors.Is(err, engine.ErrMalformed) {
		t.Fatalf("Ingest = %v, want ErrMalformed", err)
	}
	dead := store.DeadLetters()
	if len(dead) != 1 || !bytes.Equal(dead[0].Body, body) || dead[0].SHA256 != sha256.Sum256(body) || dead[0].Reason != err.Error() {
		t.Errorf("dead letters = %+v, want the body with its reason", dead)
	}
}

func TestIngestStoreFailure(t *testing.T) {
	store := engine.NewMemoryStore()
	eng := engine.New(store, engine.Policy{})
	store.FailUpdates(errors.New("disk full"))
	for _, body := range [][]byte{fixture(t, "inquiry.created.json"), []byte("{")} {
		if _, err := eng.Ingest(ctx, engine.Delivery{Body: body}); !errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("Ingest = %v, want ErrUnavailable (so the sender retries)", err)
		}
	}
	store.FailUpdates(nil)
	if res := deliver(t, eng, fixture(t, "inquiry.created.json")); res.Duplicate {
		t.Error("a delivery that failed was stored")
	}
	if len(store.DeadLetters()) != 0 {
		t.Error("a dead letter that failed was stored")
	}
}

// TestRedactionForgets: once an inquiry is redacted, every stored body of
// it is scrubbed, including those that arrive later, and the SHA-256 of
// what was received stays.
func TestRedactionForgets(t *testing.T) {
	store := engine.NewMemoryStore()
	eng := engine.New(store, engine.Policy{})
	files := []string{"inquiry.created.json", "inquiry.started.json", "inquiry.redacted.json", "inquiry.approved.json", "inquiry.updated-tags.json"}
	sums := map[string][32]byte{}
	for _, f := range files {
		body := fixture(t, f)
		res := deliver(t, eng, body)
		sums[res.EventID] = sha256.Sum256(body)
	}
	recs, _ := store.Events(ctx, "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	if len(recs) != len(files) {
		t.Fatalf("%d records, want %d", len(recs), len(files))
	}
	for _, r := range recs {
		for _, pii := range fixturePII {
			if bytes.Contains(r.Body, []byte(pii)) {
				t.Errorf("%s (%s) still holds %q", r.EventID, r.Name, pii)
			}
		}
		if r.SHA256 != sums[r.EventID] {
			t.Errorf("%s: SHA-256 of the received body lost", r.EventID)
		}
	}
	inq, _ := eng.Inquiry(ctx, "inq_kT4xVnR2bPmYwL9sTgD3cExZ")
	if !inq.Redacted || len(inq.Tags) != 0 || inq.Status != engine.StatusApproved {
		t.Errorf("projection %+v, want redacted, approved, no tags", inq)
	}
}

// TestRedactionForgetsRelatedEvents checks that redacting an inquiry
// scrubs the verifications, reports and sessions that belong to it,
// whether they arrived before the redaction or after it, and nothing of
// another inquiry's.
func TestRedactionForgetsRelatedEvents(t *testing.T) {
	const inquiryID = "inq_kT4xVnR2bPmYwL9sTgD3cExZ"
	relatedFiles := []string{"verification.passed.json", "inquiry-session.started.json", "report_watchlist.matched.json"}
	for _, tt := range []struct {
		name    string
		created bool     // inquiry.created is delivered first
		before  []string // related events delivered before the redaction
	}{
		{"all before", true, relatedFiles},
		{"all after", true, nil},
		{"some of each", true, relatedFiles[:1]},
		{"redaction is the inquiry's first event", false, relatedFiles},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := engine.NewMemoryStore()
			eng := engine.New(store, engine.Policy{})
			if tt.created {
				deliver(t, eng, fixture(t, "inquiry.created.json"))
			}
			for _, f := range tt.before {
				deliver(t, eng, fixture(t, f))
			}
			// Another inquiry's session, which must keep its body.
			other := bytes.ReplaceAll(fixture(t, "inquiry-session.started.json"), []byte(inquiryID), []byte("inq_other"))
			other = bytes.ReplaceAll(other, []byte("evt_"), []byte("evt_o"))
			other = bytes.ReplaceAll(other, []byte("iqse_"), []byte("iqse_o")) // objects are known by id
			deliver(t, eng, other)
			deliver(t, eng, fixture(t, "inquiry.redacted.json"))
			for _, f := range relatedFiles[len(tt.before):] {
				deliver(t, eng, fixture(t, f))
			}

			recs, err := store.RelatedEvents(ctx, inquiryID)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(relatedFiles) {
				t.Fatalf("%d related events, want %d", len(recs), len(relatedFiles))
			}
			for _, r := range recs {
				for _, pii := range fixturePII {
					if bytes.Contains(r.Body, []byte(pii)) {
						t.Errorf("%s (%s) still holds %q", r.EventID, r.Name, pii)
					}
				}
			}
			kept, err := store.RelatedEvents(ctx, "inq_other")
			if err != nil {
				t.Fatal(err)
			}
			if len(kept) != 1 || !bytes.Equal(kept[0].Body, other) {
				t.Errorf("another inquiry's session was rewritten: %+v", kept)
			}
		})
	}
}

// TestSubscribersSeeEachChangeOnce delivers many inquiries concurrently and
// checks that subscribers receive exactly the change feed.
func TestSubscribersSeeEachChangeOnce(t *testing.T) {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{AutoDecide: true})
	var mu sync.Mutex
	seen := map[int64]int{}
	cancel := eng.Subscribe(func(c engine.Change) {
		mu.Lock()
		defer mu.Unlock()
		seen[c.Seq]++
	})
	changed := eng.Changed()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			inq := fmt.Sprintf("inq_%d", i)
			t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
			for j, st := range []engine.Status{"created", "pending", "completed", "completed"} {
				body := eventSpec{ID: fmt.Sprintf("evt_%d_%d", i, j), Name: "inquiry." + map[engine.Status]string{"created": "created", "pending": "started", "completed": "completed"}[st],
					Status: string(st), At: t0.Add(time.Duration(j) * time.Minute), Inquiry: inq}.body()
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: body}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-changed:
	default:
		t.Error("Changed() channel was not closed by a change")
	}
	cancel()
	deliver(t, eng, fixture(t, "inquiry.created.json"))
	feed, _ := eng.Changes(ctx, 0, 1000)
	if len(feed) != 20*3+1 {
		t.Errorf("feed has %d changes, want %d", len(feed), 20*3+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 20*3 {
		t.Errorf("subscriber saw %d distinct changes, want %d (none after cancel)", len(seen), 20*3)
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("change %d delivered %d times", seq, n)
		}
	}
}

func TestHistoryUnknownInquiry(t *testing.T) {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
	if _, err := eng.History(ctx, "inq_none"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("History = %v, want ErrNotFound", err)
	}
	if _, err := eng.Inquiry(ctx, "inq_none"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Inquiry = %v, want ErrNotFound", err)
	}
	if _, _, err := eng.Inquiries(ctx, engine.Query{Limit: 501}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("Inquiries(limit 501) = %v, want ErrInvalid", err)
	}
}

// TestIngestReportsAnomaliesAndRedactions: a Result says which anomalies
// the delivery added and whether it redacted its object, once: a
// redelivery adds nothing.
func TestIngestReportsAnomaliesAndRedactions(t *testing.T) {
	unknownName := bytes.Replace(fixture(t, "inquiry.approved.json"), []byte(`"name": "inquiry.approved"`), []byte(`"name": "inquiry.teleported"`), 1)
	unknownName = bytes.Replace(unknownName, []byte(`"evt_`), []byte(`"evt_teleported_`), 1)
	tests := []struct {
		name          string
		before        []string // fixtures delivered first
		body          []byte
		wantKinds     []string
		wantRedaction bool
	}{
		{"plain", nil, fixture(t, "inquiry.created.json"), nil, false},
		{"redecision", []string{"inquiry.approved.json"}, fixture(t, "inquiry.declined.json"), []string{engine.AnomalyRedecision}, false},
		{"unknown event", nil, unknownName, []string{engine.AnomalyUnknownEvent}, false},
		{"redaction", []string{"inquiry.created.json"}, fixture(t, "inquiry.redacted.json"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := engine.New(engine.NewMemoryStore(), engine.Policy{})
			for _, f := range tt.before {
				deliver(t, eng, fixture(t, f))
			}
			res := deliver(t, eng, tt.body)
			var kinds []string
			for _, a := range res.Anomalies {
				kinds = append(kinds, a.Kind)
			}
			if !reflect.DeepEqual(kinds, tt.wantKinds) || res.Redaction != tt.wantRedaction {
				t.Errorf("got anomalies %v, redaction %v; want %v, %v", kinds, res.Redaction, tt.wantKinds, tt.wantRedaction)
			}
			again := deliver(t, eng, tt.body)
			if !again.Duplicate || len(again.Anomalies) != 0 || again.Redaction {
				t.Errorf("redelivery: duplicate %v, anomalies %v, redaction %v; want a duplicate adding nothing",
					again.Duplicate, again.Anomalies, again.Redaction)
			}
		})
	}
}
