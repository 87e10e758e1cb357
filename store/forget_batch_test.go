package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/internal/bodycodec"
	"github.com/personad/personad/store"
)

// These tests put several Updates in one batch of the writer, where its
// caches and the links a transaction keeps pending matter: what one fn
// did must be seen, or forgotten, by the next fn and the next batch.

// holdWriter runs an Update whose fn blocks the writer goroutine until
// release is called (at the latest when the test ends). Updates started
// meanwhile queue up, and the writer takes them, in queue order, into its
// next batch.
func holdWriter(tb testing.TB, db *store.DB) (release func()) {
	tb.Helper()
	held, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var heldOnce, releaseOnce sync.Once
	release = func() {
		releaseOnce.Do(func() {
			close(unblock)
			if err := <-done; err != nil {
				tb.Errorf("the update that held the writer: %v", err)
			}
		})
	}
	tb.Cleanup(release)
	go func() {
		done <- db.Update(ctx, func(engine.Tx) error {
			heldOnce.Do(func() { close(held) })
			<-unblock
			return nil
		})
	}()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		tb.Fatal("the writer did not run the update that holds it within 5s")
	}
	return release
}

// waitQueued waits until n Updates are queued for the writer.
func waitQueued(tb testing.TB, db *store.DB, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for store.Queued(db) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d updates queued after 5s, want %d", store.Queued(db), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// inOneBatch runs fns as concurrent Updates that the writer takes into
// one batch, in the order given, and returns their errors. It fails tb
// unless they shared one batch.
func inOneBatch(tb testing.TB, db *store.DB, fns ...func(engine.Tx) error) []error {
	tb.Helper()
	release := holdWriter(tb, db)
	batches, updates := store.Batches(db) // the holding batch included
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = db.Update(ctx, fn) })
		waitQueued(tb, db, i+1) // so that fns[i] runs after fns[i-1]
	}
	release()
	wg.Wait()
	if b, u := store.Batches(db); b != batches+1 || u != updates+int64(len(fns)) {
		tb.Fatalf("%d updates ran in %d batches, want %d in one", u-updates, b-batches, len(fns))
	}
	return errs
}

// mustUpdate runs fn in an Update of its own and fails tb when it fails.
func mustUpdate(tb testing.TB, db *store.DB, fn func(engine.Tx) error) {
	tb.Helper()
	if err := db.Update(ctx, fn); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// storedLinks reads the links table of the database at path directly.
func storedLinks(tb testing.TB, path string) []engine.Link {
	tb.Helper()
	rows, err := rawDB(tb, path, "mode=ro").Query(`SELECT object_id, owner_id FROM links ORDER BY owner_id, object_id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var links []engine.Link
	for rows.Next() {
		var l engine.Link
		if err := rows.Scan(&l.Object, &l.Owner); err != nil {
			tb.Fatal(err)
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return links
}

// forgetting returns the forget mode the writer of db reports for id.
func forgetting(tb testing.TB, db *store.DB, id string) engine.Forget {
	tb.Helper()
	var mode engine.Forget
	mustUpdate(tb, db, func(tx engine.Tx) (err error) {
		mode, err = tx.Forgetting(id)
		return err
	})
	return mode
}

func roseFor(rose []engine.Forgotten, id string) bool {
	return slices.ContainsFunc(rose, func(f engine.Forgotten) bool { return f.ID == id })
}

// TestRolledBackLinkIsNotKnown: a link added by an fn that fails is not
// stored, so the writer must not remember it as stored once the batch
// commits the others. Otherwise a later AddLinks of the same link is
// answered from the cache, the link is never stored, and Forget of its
// owner misses the object.
func TestRolledBackLinkIsNotKnown(t *testing.T) {
	db := openTemp(t, store.Options{})
	rolledBack := engine.Link{Object: "ver_1", Owner: "inq_1"}
	kept := engine.Link{Object: "ver_kept", Owner: "inq_kept"}
	boom := errors.New("boom")
	errs := inOneBatch(t, db,
		func(tx engine.Tx) error {
			if _, err := tx.AddLinks([]engine.Link{rolledBack}); err != nil {
				return err
			}
			return boom
		},
		func(tx engine.Tx) error {
			_, err := tx.AddLinks([]engine.Link{kept})
			return err
		})
	if !errors.Is(errs[0], boom) || errs[1] != nil {
		t.Fatalf("errors %v, want boom and nil", errs)
	}
	if got, want := storedLinks(t, db.Path()), []engine.Link{kept}; !slices.Equal(got, want) {
		t.Fatalf("stored links %v, want only the succeeding fn's %v", got, want)
	}

	var (
		unknown []engine.Link
		rose    []engine.Forgotten
	)
	mustUpdate(t, db, func(tx engine.Tx) (err error) {
		if unknown, err = tx.AddLinks([]engine.Link{rolledBack}); err != nil {
			return err
		}
		rose, err = tx.Forget(rolledBack.Owner, engine.ForgetAll)
		return err
	})
	if !slices.Contains(unknown, rolledBack) {
		t.Errorf("AddLinks(%v) reports it known: the writer remembers a link of a rolled-back fn", rolledBack)
	}
	if !roseFor(rose, rolledBack.Object) {
		t.Errorf("Forget(%s) = %v, want %s among them", rolledBack.Owner, rose, rolledBack.Object)
	}
	if got, want := storedLinks(t, db.Path()), []engine.Link{rolledBack, kept}; !slices.Equal(got, want) {
		t.Errorf("stored links %v, want %v", got, want)
	}
}

// TestForgetSeesPendingLinks: the links an fn adds are inserted only when
// the batch commits; a later fn of the same batch that forgets their owner
// must forget their objects too, whether the batch ran without savepoints
// or was run again with them because another fn failed.
func TestForgetSeesPendingLinks(t *testing.T) {
	boom := errors.New("boom")
	for _, failing := range []bool{false, true} {
		t.Run(fmt.Sprintf("another fn fails=%v", failing), func(t *testing.T) {
			db := openTemp(t, store.Options{})
			link := engine.Link{Object: "ver_2", Owner: "inq_2"}
			var rose []engine.Forgotten
			fns := []func(engine.Tx) error{
				func(tx engine.Tx) error {
					_, err := tx.AddLinks([]engine.Link{link})
					return err
				},
				func(tx engine.Tx) (err error) {
					rose, err = tx.Forget(link.Owner, engine.ForgetKeepReference)
					return err
				},
			}
			if failing {
				fns = append(fns, func(tx engine.Tx) error {
					if _, err := tx.AddLinks([]engine.Link{{Object: "ver_3", Owner: "inq_2"}}); err != nil {
						return err
					}
					return boom
				})
			}
			errs := inOneBatch(t, db, fns...)
			if errs[0] != nil || errs[1] != nil || failing && !errors.Is(errs[2], boom) {
				t.Fatalf("errors %v, want nil, nil and, if any, boom", errs)
			}
			if !roseFor(rose, link.Owner) || !roseFor(rose, link.Object) {
				t.Errorf("Forget(%s) = %v, want %s and %s: it missed the link an earlier fn of its batch added",
					link.Owner, rose, link.Owner, link.Object)
			}
			if got := forgetting(t, db, link.Object); got != engine.ForgetKeepReference {
				t.Errorf("Forgetting(%s) = %v after the commit, want %v", link.Object, got, engine.ForgetKeepReference)
			}
			if got, want := storedLinks(t, db.Path()), []engine.Link{link}; !slices.Equal(got, want) {
				t.Errorf("stored links %v, want %v", got, want)
			}
		})
	}
}

// TestForgottenFilterSeesOtherWriters: the writer answers Forgetting from
// a filter of the forgotten ids it loaded once; when another connection
// (another personad, or a hand-made fix) forgets an id, the filter must
// not hide it.
func TestForgottenFilterSeesOtherWriters(t *testing.T) {
	tests := []struct {
		name   string
		forget func(t *testing.T, path, id string)
	}{
		{"raw SQL", func(t *testing.T, path, id string) {
			if _, err := rawDB(t, path, "_pragma=busy_timeout(5000)").Exec(
				`INSERT INTO forgotten (id, mode, at) VALUES (?, 2, 0)`, id); err != nil {
				t.Fatal(err)
			}
		}},
		{"another store.DB", func(t *testing.T, path, id string) {
			other := openWithoutLock(t, path)
			mustUpdate(t, other, func(tx engine.Tx) error {
				if _, err := tx.AddLinks([]engine.Link{{Object: id, Owner: "act_4"}}); err != nil {
					return err
				}
				_, err := tx.Forget("act_4", engine.ForgetAll)
				return err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			db := openPath(t, path, store.Options{})
			const id = "ver_4"
			if got := forgetting(t, db, id); got != engine.ForgetNone { // loads the filter
				t.Fatalf("Forgetting(%s) = %v before anyone forgot it", id, got)
			}
			tt.forget(t, path, id)
			if got := forgetting(t, db, id); got != engine.ForgetAll {
				t.Errorf("Forgetting(%s) = %v after another connection forgot it, want %v", id, got, engine.ForgetAll)
			}
		})
	}
}

// storedBody is one row of the events table, its body decoded.
type storedBody struct {
	eventID, objectID string
	sum               []byte
	body              []byte
}

// objectBodies reads the stored bodies of the events about the objects
// ids (all events when ids is empty) from the database at path directly.
func objectBodies(tb testing.TB, path string, ids ...string) []storedBody {
	tb.Helper()
	rows, err := rawDB(tb, path, "mode=ro").Query(`SELECT event_id, object_id, sha256, body FROM events ORDER BY seq`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var all []storedBody
	for rows.Next() {
		var b storedBody
		var stored []byte
		if err := rows.Scan(&b.eventID, &b.objectID, &b.sum, &stored); err != nil {
			tb.Fatal(err)
		}
		var err error
		if b.body, err = bodycodec.Decode(stored); err != nil {
			tb.Fatalf("body of %s: %v", b.eventID, err)
		}
		if len(ids) == 0 || slices.Contains(ids, b.objectID) {
			all = append(all, b)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return all
}

// checkNoValues fails tb for every stored body that holds one of values.
func checkNoValues(tb testing.TB, bodies []storedBody, values ...string) {
	tb.Helper()
	for _, b := range bodies {
		for _, v := range values {
			if bytes.Contains(b.body, []byte(v)) {
				tb.Errorf("%s (%s) still holds %q", b.eventID, b.objectID, v)
			}
		}
	}
}

// TestConcurrentRedactionForgets delivers the fixture inquiry's history,
// its redaction, a verification that names no owner (only the inquiry's
// events list it) and a report that names its owners but is listed by no
// inquiry event, from 50 goroutines at once, each body several times, in
// rounds that let the writer batch them as they come, that put all of
// them in one batch, and that put them in one batch in a chosen order.
// Every round must forget every personal value of the inquiry, the
// verification and the report, and leave a log that verifies.
func TestConcurrentRedactionForgets(t *testing.T) {
	const verification, report = "ver_X3kHmRqV9YpZ2nBwL5tGdJcE", "rep_Wq7NbT3xKcZ9vRmY2pLdHfGs"
	// The report names the inquiry as its owner and no inquiry event
	// lists it: in a batch with the redaction, its link is still pending.
	bodies := append(history(t), storetest.WithoutRelationships(t, fixture(t, "verification.passed.json")),
		fixture(t, "report_watchlist.matched.json"))
	const deliveries = 50
	for round := range 6 {
		mode := []string{"as they come", "one batch", "one batch in seed order"}[round%3]
		t.Run(fmt.Sprintf("round %d, %s", round, mode), func(t *testing.T) {
			db := openTemp(t, store.Options{})
			eng := engine.New(db, engine.Policy{})
			rng := rand.New(rand.NewPCG(uint64(round), 11))
			order := rng.Perm(deliveries) // every body at least three times
			var release func()
			if mode != "as they come" {
				release = holdWriter(t, db)
			}
			batches, updates := store.Batches(db)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, n := range order {
				body, gate := bodies[n%len(bodies)], start
				if mode == "one batch in seed order" {
					gate = make(chan struct{})
					close(gate)
				}
				wg.Go(func() {
					<-gate
					if _, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Now(), AttemptsMade: 1}); err != nil {
						t.Errorf("Ingest: %v", err)
					}
				})
				if mode == "one batch in seed order" {
					waitQueued(t, db, i+1)
				}
			}
			close(start)
			if release != nil {
				waitQueued(t, db, deliveries)
				release()
			}
			wg.Wait()
			if b, u := store.Batches(db); release != nil && (b != batches+1 || u != updates+deliveries) {
				t.Fatalf("%d deliveries ran in %d batches, want one", u-updates, b-batches)
			}

			if !mustInquiry(t, db, fixtureInquiry).Redacted {
				t.Error("inquiry not redacted")
			}
			stored := objectBodies(t, db.Path(), fixtureInquiry, verification, report)
			if len(stored) != len(bodies) {
				t.Errorf("%d events of the inquiry, the verification and the report stored, want %d", len(stored), len(bodies))
			}
			checkNoValues(t, stored, "Jane", "123 Main St", "jane@example.com", "D1234567")
			for _, id := range []string{verification, report} {
				if got := forgetting(t, db, id); got != engine.ForgetKeepReference {
					t.Errorf("Forgetting(%s) = %v, want %v", id, got, engine.ForgetKeepReference)
				}
			}
			mustVerify(t, db, engine.Policy{})
			scanForPII(t, db.Path(), "as acknowledged")
		})
	}
}
