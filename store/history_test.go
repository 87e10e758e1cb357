package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/store"
)

// historyStream returns a loadgen stream of n events, fully shuffled, the
// number of distinct inquiries in it and of redactions; without
// redactions when redactions is false.
func historyStream(n int, redactions bool) (bodies [][]byte, inquiries, redacted int) {
	gen := loadgen.New(loadgen.Config{Seed: 7, Events: n})
	seen := map[*loadgen.Inquiry]bool{}
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		if strings.HasSuffix(ev.Name, ".redacted") {
			if !redactions {
				continue
			}
			redacted++
		}
		if ev.IsInquiry() {
			seen[ev.Inquiry] = true
		}
		bodies = append(bodies, ev.Body)
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	return bodies, len(seen), redacted
}

// checkHistoryCache fails the test unless every log the writer's cache
// holds is the log the file holds, and it holds at least one.
func checkHistoryCache(tb testing.TB, db *store.DB) (misses int64) {
	tb.Helper()
	cached, misses, err := store.CheckHistoryCache(db)
	if err != nil {
		tb.Fatal(err)
	}
	if cached == 0 {
		tb.Fatal("the parsed-history cache holds no inquiry")
	}
	return misses
}

// TestLateEventsParseNoStoredBody: fully shuffled delivery makes most
// events late, yet no re-fold reads and parses a stored log: every
// inquiry's log is cached from its first event on. Only a redaction,
// which rewrites its inquiry's stored bodies, makes the next re-fold of
// that inquiry read them again.
func TestLateEventsParseNoStoredBody(t *testing.T) {
	for _, redactions := range []bool{false, true} {
		t.Run(fmt.Sprintf("redactions=%v", redactions), func(t *testing.T) {
			bodies, inquiries, redacted := historyStream(5000, redactions)
			if redactions && redacted == 0 {
				t.Fatal("the stream has no redaction")
			}
			db := openTemp(t, store.Options{})
			eng := engine.New(db, engine.Policy{})
			late, newest := 0, map[string]time.Time{} // an event older than its inquiry's newest is late
			for _, b := range bodies {
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: b, ReceivedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				ev, err := engine.Parse(b)
				if err != nil || !ev.IsInquiry() {
					continue
				}
				if ev.CreatedAt.Before(newest[ev.ObjectID]) {
					late++
				} else {
					newest[ev.ObjectID] = ev.CreatedAt
				}
			}
			if late < 100 {
				t.Fatalf("%d late events in a shuffled stream: the test proves nothing", late)
			}
			cached, misses, err := store.CheckHistoryCache(db)
			if err != nil {
				t.Fatal(err)
			}
			if misses > int64(redacted) {
				t.Errorf("%d re-folds read and parsed a stored log (%d late events, %d redactions)", misses, late, redacted)
			}
			if cached != inquiries {
				t.Errorf("%d logs cached, want all %d inquiries'", cached, inquiries)
			}
		})
	}
}

// TestHistoryCacheFollowsTheLog: whatever rewrites the log (redactions,
// conflicting redeliveries, retention) the cached logs stay the stored
// ones, with concurrent deliveries batched together, and every
// projection stays what a re-fold of the file gives.
func TestHistoryCacheFollowsTheLog(t *testing.T) {
	bodies, _, _ := historyStream(4000, true)
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	t0 := time.Now().Add(-time.Hour)
	ingestAll := func(bodies [][]byte, at time.Time) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < len(bodies); i += 16 {
					if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodies[i], ReceivedAt: at}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	half := len(bodies) / 2
	ingestAll(bodies[:half], t0)
	checkHistoryCache(t, db)

	// Conflicting redeliveries of every 40th event: the stored event is
	// Conflicted from then on.
	var twins [][]byte
	for i := 0; i < half; i += 40 {
		twin := bytes.Replace(bodies[i], []byte(`"attributes":{`), []byte(`"attributes":{"twin":true,`), 1)
		if bytes.Equal(twin, bodies[i]) {
			t.Fatalf("body %d has no attributes to change", i)
		}
		twins = append(twins, twin)
	}
	ingestAll(twins, t0)
	conflicts, err := db.Conflicts(ctx, len(twins))
	if err != nil || len(conflicts) == 0 {
		t.Fatalf("conflicts kept: %d, %v; want some", len(conflicts), err)
	}
	checkHistoryCache(t, db)

	// Redacting an inquiry's account scrubs its reference id from every
	// stored body of the inquiry, a fact its fold reads.
	var redactions [][]byte
	for _, b := range bodies[:half] {
		ev, err := engine.Parse(b)
		if err != nil || !ev.IsInquiry() || ev.Inquiry.AccountID == "" || ev.Inquiry.ReferenceID == "" {
			continue
		}
		redactions = append(redactions, accountRedacted(ev.Inquiry.AccountID, len(redactions)))
		if len(redactions) == 3 {
			break
		}
	}
	ingestAll(redactions, t0)
	checkHistoryCache(t, db)

	// Retention scrubs what came before; the rest comes after.
	if rep, err := db.Retain(ctx, t0.Add(time.Minute)); err != nil || rep.EventsScrubbed == 0 {
		t.Fatalf("Retain: %+v, %v; want bodies scrubbed", rep, err)
	}
	ingestAll(bodies[half:], time.Now())
	checkHistoryCache(t, db)
	if rep, err := db.Rebuild(ctx); err != nil || len(rep.Changed) != 0 {
		t.Errorf("Rebuild: %d projections changed (%v); want none", len(rep.Changed), err)
	}
}

// TestHistoryCacheForgetsRolledBackWrites: an event appended by an update
// that fails is gone from the cache with the rest of its writes, whether
// it ran alone or in a batch with others.
func TestHistoryCacheForgetsRolledBackWrites(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for i, name := range []string{engine.EventCreated, engine.EventStarted} {
		body := storetest.Body("evt_h"+string(rune('a'+i)), name, "inq_h", engine.StatusPending, t0.Add(time.Duration(i)*time.Minute))
		ingestAt(t, eng, body, t0)
	}
	failed := errors.New("fails after appending")
	body := storetest.Body("evt_hz", engine.EventCompleted, "inq_h", engine.StatusCompleted, t0.Add(time.Hour))
	ev, err := engine.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 { // the failing update and seven others, most in one batch
		wg.Go(func() {
			err := db.Update(ctx, func(tx engine.Tx) error {
				if i > 0 {
					_, err := tx.Inquiry("inq_h")
					return err
				}
				if _, err := tx.(engine.HistoryTx).InquiryHistory("inq_h"); err != nil {
					return err
				}
				if err := tx.AppendEvent(&engine.Record{EventID: ev.ID, Name: ev.Name, ObjectType: ev.ObjectType,
					ObjectID: ev.ObjectID, CreatedAt: ev.CreatedAt, ReceivedAt: t0, Deliveries: 1, Body: body,
					Outcome: engine.OutcomeUnknown, Event: ev}); err != nil {
					return err
				}
				if events, err := tx.(engine.HistoryTx).InquiryHistory("inq_h"); err != nil || len(events) != 3 {
					t.Errorf("inside the update: %d events, %v; want 3", len(events), err)
				}
				return failed
			})
			if i == 0 && !errors.Is(err, failed) {
				t.Errorf("the failing update returned %v", err)
			}
		})
	}
	wg.Wait()
	if _, _, err := store.CheckHistoryCache(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx engine.Tx) error {
		events, err := tx.(engine.HistoryTx).InquiryHistory("inq_h")
		if err == nil && len(events) != 2 {
			t.Errorf("after the rollback: %d events, want 2", len(events))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	checkHistoryCache(t, db)
	inq := mustInquiry(t, db, "inq_h")
	if inq.EventCount != 2 {
		t.Errorf("projection folds %d events, want 2", inq.EventCount)
	}
}

// accountRedacted is an account.redacted event of account id.
func accountRedacted(id string, n int) []byte {
	return []byte(fmt.Sprintf(`{"data":{"type":"event","id":"evt_accountRedacted%04d","attributes":{"name":"account.redacted",`+
		`"created-at":"2025-06-03T00:00:00.000Z","payload":{"data":{"type":"account","id":%q,`+
		`"attributes":{"redacted-at":"2025-06-03T00:00:00.000Z"}}}}}}`, n, id))
}
