package store_test

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// floorBatch is the batch size BenchmarkIngestFloor commits: about what
// group commit reaches at concurrency 64 (BenchmarkIngest's events/commit).
const floorBatch = 32

// BenchmarkIngestFloor puts BenchmarkIngest's concurrency-64 figure next to
// what the same events cost with less of the work, measured in one run:
//
//   - level=bare: the least any design must write, without personad: a
//     table of event ids (UNIQUE) and bodies, one INSERT per event,
//     floorBatch events a transaction, from one goroutine, in a database
//     opened with the store's pragmas (WAL, synchronous=FULL).
//   - level=append: only the log. One AppendEvent per event into the
//     events table, with the same batches.
//   - level=store: every write the store makes for an event arriving in
//     order (the duplicate lookup, the log row, the projection, the change
//     row), with the same batches from one goroutine. The events were
//     parsed and folded beforehand: no engine, no hashing, no goroutines
//     waiting on each other.
//   - level=engine: engine.Ingest from 64 goroutines, as BenchmarkIngest
//     conc=64/mode=group.
//
// ids=sequential is BenchmarkIngest's workload; ids=random gives events and
// inquiries random Persona-style ids. Run with -benchtime 2x.
func BenchmarkIngestFloor(b *testing.B) {
	for _, ids := range []string{"sequential", "random"} {
		g := newGenerator(b)
		g.random = ids == "random"
		bodies := g.bodies(ingestEvents / len(lifecycle))
		work := foldAhead(b, bodies)
		levels := []struct {
			name string
			run  func(tb testing.TB, db *store.DB) time.Duration
		}{
			{"bare", func(tb testing.TB, db *store.DB) time.Duration {
				return bareInserts(tb, db.Path()+".bare", work)
			}},
			{"append", func(tb testing.TB, db *store.DB) time.Duration {
				return inBatches(tb, db, work, func(w *folded, tx engine.Tx) error { return tx.AppendEvent(w.rec) })
			}},
			{"store", func(tb testing.TB, db *store.DB) time.Duration {
				return inBatches(tb, db, work, (*folded).write)
			}},
			{"engine", func(tb testing.TB, db *store.DB) time.Duration {
				return ingestAll(tb, engine.New(db, engine.Policy{}), bodies, 64)
			}},
		}
		for _, l := range levels {
			b.Run(fmt.Sprintf("ids=%s/level=%s", ids, l.name), func(b *testing.B) {
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					db := openPath(b, filepath.Join(b.TempDir(), "personad.db"), store.Options{})
					b.StartTimer()
					elapsed += l.run(b, db)
					b.StopTimer()
					if err := db.Close(); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.N*len(bodies))/elapsed.Seconds(), "events/s")
			})
		}
	}
}

// folded is one event with what the engine would make of it, arriving in
// order.
type folded struct {
	rec    *engine.Record
	after  *engine.Inquiry
	change *engine.Change
	links  []engine.Link // the owners the event names
}

// write makes the store writes engine.Ingest makes for w.
func (w *folded) write(tx engine.Tx) error {
	if red, err := tx.RecordDelivery(w.rec.EventID, w.rec.AttemptsMade, w.rec.SHA256); err != nil || red.Seen {
		return fmt.Errorf("event %s seen %v: %v", w.rec.EventID, red.Seen, err)
	}
	if _, err := tx.Inquiry(w.after.ID); err != nil {
		return err
	}
	if _, err := tx.AddLinks(w.links); err != nil {
		return err
	}
	if _, err := tx.Forgetting(w.rec.ObjectID); err != nil {
		return err
	}
	if err := tx.AppendEvent(w.rec); err != nil {
		return err
	}
	if err := tx.SaveInquiry(w.after); err != nil {
		return err
	}
	return tx.AppendChange(w.change)
}

// foldAhead parses and folds bodies in order, outside any timing.
func foldAhead(tb testing.TB, bodies [][]byte) []*folded {
	now := time.Now()
	inquiries := map[string]*engine.Inquiry{}
	out := make([]*folded, len(bodies))
	for i, body := range bodies {
		ev, err := engine.Parse(body)
		if err != nil {
			tb.Fatal(err)
		}
		before := inquiries[ev.ObjectID]
		after := &engine.Inquiry{ID: ev.ObjectID}
		var from engine.Status
		if before != nil {
			after, from = before.Clone(), before.Status
		}
		step := after.Apply(ev, engine.Policy{})
		inquiries[ev.ObjectID] = after
		out[i] = &folded{
			rec: &engine.Record{EventID: ev.ID, Name: ev.Name, ObjectType: ev.ObjectType, ObjectID: ev.ObjectID,
				CreatedAt: ev.CreatedAt, ReceivedAt: now, AttemptsMade: 1, Deliveries: 1, Body: body,
				SHA256: sha256.Sum256(body), Outcome: step.Outcome, Parts: ev.Parts},
			links: ev.OwnerLinks(),
			after: after,
			change: &engine.Change{InquiryID: ev.ObjectID, EventID: ev.ID, FromStatus: from, ToStatus: after.Status,
				Decision: after.Decision, Redacted: after.Redacted, At: now},
		}
	}
	return out
}

// bareInserts inserts every event's id and body into a new database at
// path that has nothing else, through a connection configured as the
// store's writer, floorBatch events a transaction, and returns how long it
// took.
func bareInserts(tb testing.TB, path string, work []*folded) time.Duration {
	db, err := sql.Open("sqlite", store.WriterDSN(path))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, body BLOB NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	insert, err := db.Prepare(`INSERT INTO events (event_id, body) VALUES (?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	defer insert.Close()
	start := time.Now()
	for i := 0; i < len(work); i += floorBatch {
		tx, err := db.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		st := tx.Stmt(insert)
		for _, w := range work[i:min(i+floorBatch, len(work))] {
			if _, err := st.Exec(w.rec.EventID, w.rec.Body); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// inBatches runs write for every event, floorBatch events a transaction,
// from one goroutine, and returns how long it took.
func inBatches(tb testing.TB, db *store.DB, work []*folded, write func(*folded, engine.Tx) error) time.Duration {
	start := time.Now()
	for i := 0; i < len(work); i += floorBatch {
		batch := work[i:min(i+floorBatch, len(work))]
		if err := db.Update(ctx, func(tx engine.Tx) error {
			for _, w := range batch {
				if err := write(w, tx); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

// TestFloorWritesAreIngests checks that BenchmarkIngestFloor's store level
// makes the writes engine.Ingest makes: the same events, projections and
// change feed, so that the floor measures the store's real work.
func TestFloorWritesAreIngests(t *testing.T) {
	for _, random := range []bool{false, true} {
		t.Run(fmt.Sprintf("random=%v", random), func(t *testing.T) {
			g := newGenerator(t)
			g.random = random
			const inquiries = 20
			bodies := g.bodies(inquiries)
			floor, ingested := openTemp(t, store.Options{}), openTemp(t, store.Options{})
			inBatches(t, floor, foldAhead(t, bodies), (*folded).write)
			eng := engine.New(ingested, engine.Policy{})
			for _, body := range bodies {
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Now(), AttemptsMade: 1}); err != nil {
					t.Fatal(err)
				}
			}
			for n := range inquiries {
				id := g.inquiryID(n)
				if random && strings.Contains(id, "gen") {
					t.Fatalf("random inquiry id %s", id)
				}
				want, err := ingested.GetInquiry(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				got, err := floor.GetInquiry(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if want.Status != engine.StatusApproved {
					t.Errorf("%s: ingested status %q, want approved", id, want.Status)
				}
				if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
					t.Errorf("%s: floor wrote\n%s\ningest wrote\n%s", id, g, w)
				}
				gotEvents, err := floor.Events(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				wantEvents, err := ingested.Events(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if len(gotEvents) != len(lifecycle) || len(wantEvents) != len(lifecycle) {
					t.Fatalf("%s: %d events from the floor, %d ingested, want %d", id, len(gotEvents), len(wantEvents), len(lifecycle))
				}
				for i := range gotEvents {
					// Every field but the time of receipt, which each run
					// takes from the clock.
					g, w := gotEvents[i], wantEvents[i]
					g.ReceivedAt, w.ReceivedAt = time.Time{}, time.Time{}
					if !reflect.DeepEqual(g, w) {
						t.Errorf("%s event %d: floor stored\n%+v\ningest stored\n%+v", id, i, g, w)
					}
				}
			}
			gotFeed, err := floor.Changes(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			wantFeed, err := ingested.Changes(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(gotFeed) != len(bodies) || len(wantFeed) != len(bodies) {
				t.Fatalf("%d changes from the floor, %d ingested, want %d", len(gotFeed), len(wantFeed), len(bodies))
			}
			for i := range gotFeed {
				g, w := gotFeed[i], wantFeed[i]
				g.At, w.At = time.Time{}, time.Time{}
				if g != w {
					t.Errorf("change %d: floor %+v, ingested %+v", i, g, w)
				}
			}
		})
	}
}
