package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// ingestEvents is how many events one op of BenchmarkIngest ingests.
const ingestEvents = 10_000

// BenchmarkIngest measures engine.Ingest into a new store under
// synchronous=FULL with ~4 KB bodies: one op ingests ingestEvents events,
// 4 per inquiry, from conc goroutines. mode=group is the store as shipped
// (group commit); mode=tx-per-event commits every event in its own
// transaction (MaxBatch 1), as hand-written receivers do. Run with
// -benchtime 2x; the events/s metric is the figure to compare.
func BenchmarkIngest(b *testing.B) {
	bodies := newGenerator(b).bodies(ingestEvents / len(lifecycle))
	modes := []struct {
		name string
		opts store.Options
	}{
		{"group", store.Options{}},
		{"tx-per-event", store.Options{MaxBatch: 1}},
	}
	for _, conc := range []int{1, 8, 64} {
		for _, m := range modes {
			b.Run(fmt.Sprintf("conc=%d/mode=%s", conc, m.name), func(b *testing.B) {
				var elapsed time.Duration
				var diskBytes int64
				var batches, batched atomic.Int64
				opts := m.opts
				opts.OnBatch = func(n int) { batches.Add(1); batched.Add(int64(n)) }
				b.SetBytes(int64(len(bodies[0]) * len(bodies)))
				for b.Loop() {
					run := ingestIntoNew(b, opts, bodies, conc)
					elapsed += run.elapsed
					diskBytes = run.diskBytes
				}
				events := float64(b.N * len(bodies))
				b.ReportMetric(events/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(elapsed.Nanoseconds())/events, "ns/event")
				b.ReportMetric(float64(diskBytes)/float64(len(bodies)), "disk-B/event")
				b.ReportMetric(float64(batched.Load())/float64(batches.Load()), "events/commit")
			})
		}
	}
}

// ingestRun is what one op of an ingest benchmark measured.
type ingestRun struct {
	elapsed   time.Duration // ingesting, the only time the timer runs
	written   int64         // bytes passed to write(2) meanwhile (see wchar)
	diskBytes int64         // the database file's size once closed
}

// ingestIntoNew ingests bodies from conc goroutines into a new store
// opened with opts, then closes it; the benchmark's timer runs only while
// ingesting.
func ingestIntoNew(b *testing.B, opts store.Options, bodies [][]byte, conc int) ingestRun {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	path := filepath.Join(b.TempDir(), "personad.db")
	db, err := store.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	before := wchar()
	b.StartTimer()
	run := ingestRun{elapsed: ingestAll(b, engine.New(db, engine.Policy{}), bodies, conc)}
	b.StopTimer()
	run.written = wchar() - before
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	run.diskBytes = fi.Size()
	return run
}

// ingestAll ingests bodies from conc goroutines and returns how long it took.
func ingestAll(tb testing.TB, eng *engine.Engine, bodies [][]byte, conc int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(bodies); i = int(next.Add(1)) - 1 {
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodies[i], ReceivedAt: time.Now(), AttemptsMade: 1}); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkRebuild measures Rebuild over a log of 40,000 ~4 KB events
// (10,000 inquiries); one op is one full rebuild.
func BenchmarkRebuild(b *testing.B) {
	const inquiries = 10_000
	g := newGenerator(b)
	bodies := g.bodies(inquiries)
	db := openPath(b, filepath.Join(b.TempDir(), "personad.db"), store.Options{})
	ingestAll(b, engine.New(db, engine.Policy{}), bodies, 64)
	start := time.Now()
	for b.Loop() {
		rep, err := db.Rebuild(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Events != len(bodies) || len(rep.Changed) != 0 {
			b.Fatalf("rebuild report %+v, want %d events and no change", rep, len(bodies))
		}
	}
	b.ReportMetric(float64(b.N*len(bodies))/time.Since(start).Seconds(), "events/s")
}

// BenchmarkGetInquiry measures reading one projection from the read pool,
// what GET /v1/inquiries/:id costs below HTTP.
func BenchmarkGetInquiry(b *testing.B) {
	const inquiries = 1000
	g := newGenerator(b)
	db := openPath(b, filepath.Join(b.TempDir(), "personad.db"), store.Options{})
	ingestAll(b, engine.New(db, engine.Policy{}), g.bodies(inquiries), 64)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := g.inquiryID(int(n.Add(1) % inquiries))
			if _, err := db.GetInquiry(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
