package store_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// ingestShuffled ingests every lifecycle event of n generated inquiries in
// a random order, eight at a time.
func ingestShuffled(tb testing.TB, eng *engine.Engine, n int) int {
	tb.Helper()
	bodies := newGenerator(tb).bodies(n)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	var wg sync.WaitGroup
	work := make(chan []byte)
	for range 8 {
		wg.Go(func() {
			for b := range work {
				ingest(tb, eng, b)
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	return len(bodies)
}

func TestRebuild(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	const inquiries = 100
	events := ingestShuffled(t, eng, inquiries)
	for _, b := range history(t) {
		ingest(t, eng, b)
	}
	events += len(history(t))
	before, err := db.Changes(ctx, 0, engine.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("equals the live projections", func(t *testing.T) {
		rep, err := db.Rebuild(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Inquiries != inquiries+1 || rep.Events != events || len(rep.Changed) != 0 || rep.Changes != 0 {
			t.Errorf("report = %+v, want %d inquiries, %d events, nothing changed", rep, inquiries+1, events)
		}
	})

	t.Run("repairs a projection", func(t *testing.T) {
		id := newGenerator(t).inquiryID(7)
		want := jsonOf(t, mustInquiry(t, db, id))
		if err := db.Update(ctx, func(tx engine.Tx) error {
			return tx.SaveInquiry(&engine.Inquiry{ID: id, Status: engine.StatusPending, EventCount: 1})
		}); err != nil {
			t.Fatal(err)
		}
		rep, err := db.Rebuild(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rep.Changed, []string{id}; !slices.Equal(got, want) || rep.Changes != 1 {
			t.Errorf("changed %v (%d feed rows), want %v (1)", got, rep.Changes, want)
		}
		if got := jsonOf(t, mustInquiry(t, db, id)); got != want {
			t.Errorf("projection after rebuild:\ngot  %s\nwant %s", got, want)
		}
		after, err := db.Changes(ctx, int64(len(before)), engine.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != 1 || after[0].InquiryID != id || after[0].FromStatus != engine.StatusPending || after[0].ToStatus != engine.StatusApproved {
			t.Errorf("feed after repair = %+v, want one change of %s from pending to approved", after, id)
		}
	})

	t.Run("new policy", func(t *testing.T) {
		// Fold every generated inquiry under AutoDecide, one that stopped
		// at completed included.
		id := "inq_stopped"
		body := newGenerator(t).body(0, 2)
		ev, _ := engine.Parse(body)
		body = []byte(strings.NewReplacer(ev.ObjectID, id, ev.ID, "evt_stopped").Replace(string(body)))
		ingest(t, eng, body)
		path := db.Path()
		db.Close()
		auto := openPath(t, path, store.Options{Policy: engine.Policy{AutoDecide: true}})
		rep, err := auto.Rebuild(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rep.Changed, []string{id}; !slices.Equal(got, want) || rep.Changes != 1 {
			t.Errorf("changed %v (%d feed rows), want %v (1)", got, rep.Changes, want)
		}
		if got := mustInquiry(t, auto, id).Decision; got != engine.StatusApproved {
			t.Errorf("decision under AutoDecide = %q, want approved", got)
		}
	})
}

func TestStatsAndDeadLetters(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	for _, b := range history(t) {
		ingest(t, eng, b)
	}
	ingest(t, eng, fixture(t, "account.created.json"))
	bad := []byte(`{"data": {"id": "evt_x"}}`)
	if _, err := eng.Ingest(ctx, engine.Delivery{Body: bad, ReceivedAt: time.Now()}); !errors.Is(err, engine.ErrMalformed) {
		t.Fatalf("Ingest of a malformed body: %v", err)
	}

	s, err := db.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inq := mustInquiry(t, db, fixtureInquiry)
	changes, _ := db.Changes(ctx, 0, engine.MaxLimit)
	want := store.Stats{
		Events: int64(len(history(t)) + 1), Inquiries: 1, Anomalies: int64(len(inq.Anomalies)),
		Changes: int64(len(changes)), DeadLetters: 1, Bytes: s.Bytes,
	}
	if s != want || s.Bytes < 4096 || want.Anomalies == 0 {
		t.Errorf("Stats = %+v, want %+v with some anomalies and bytes", s, want)
	}

	dead, err := db.DeadLetters(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || string(dead[0].Body) != string(bad) || dead[0].Reason == "" {
		t.Errorf("DeadLetters = %+v, want the malformed body with a reason", dead)
	}
	if _, err := db.DeadLetters(ctx, 0); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("DeadLetters(0): err = %v, want ErrInvalid", err)
	}
}

func TestRebuildStopsAtAnUnparsableBody(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	for _, b := range history(t)[:4] {
		ingest(t, eng, b)
	}
	want := jsonOf(t, mustInquiry(t, db, fixtureInquiry))
	db.Close()
	mustExec(t, rawDB(t, path, ""), `UPDATE events SET body = '{"data":' WHERE event_id = 'evt_eKxXzJzpfyVVMgAz0EhvxhqW'`)

	db = openPath(t, path, store.Options{})
	rep, err := db.Rebuild(ctx)
	if err == nil || !strings.Contains(err.Error(), "evt_eKxXzJzpfyVVMgAz0EhvxhqW") {
		t.Errorf("Rebuild = %+v, %v; want an error naming the event", rep, err)
	}
	if got := jsonOf(t, mustInquiry(t, db, fixtureInquiry)); got != want {
		t.Errorf("a failed rebuild changed the projection:\ngot  %s\nwant %s", got, want)
	}
}

func TestAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	ingest(t, engine.New(db, engine.Policy{}), fixture(t, "inquiry.started.json"))
	db.Close()
	raw := rawDB(t, path, "")
	for _, q := range []string{
		`DELETE FROM events`,
		`UPDATE events SET event_id = 'evt_other'`,
		`UPDATE events SET sha256 = x'00'`,
	} {
		if _, err := raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse", q, err)
		}
	}
}
