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

// BenchmarkIngest measures engine.Ingest into a store under
// synchronous=FULL with ~4 KB bodies: one op is one event. mode=group is
// the store as shipped (group commit); mode=tx-per-event commits every
// event in its own transaction, as hand-written receivers do. Run with a
// fixed count, e.g. -benchtime 20000x.
func BenchmarkIngest(b *testing.B) {
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
				benchIngest(b, conc, m.opts)
			})
		}
	}
}

func benchIngest(b *testing.B, conc int, opts store.Options) {
	g := newGenerator(b)
	bodies := g.bodies((b.N + len(lifecycle) - 1) / len(lifecycle))[:b.N]
	path := filepath.Join(b.TempDir(), "personad.db")
	db, err := store.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.New(db, engine.Policy{})
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodies[i], ReceivedAt: time.Now(), AttemptsMade: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/float64(b.N), "disk-B/event")
	}
}

// BenchmarkRebuild measures Rebuild over a log of 40,000 ~4 KB events
// (10,000 inquiries); one op is one full rebuild.
func BenchmarkRebuild(b *testing.B) {
	const inquiries = 10_000
	g := newGenerator(b)
	bodies := g.bodies(inquiries)
	db := openPath(b, filepath.Join(b.TempDir(), "personad.db"), store.Options{})
	eng := engine.New(db, engine.Policy{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(bodies); i = int(next.Add(1)) - 1 {
				if _, err := eng.Ingest(ctx, engine.Delivery{Body: bodies[i], ReceivedAt: time.Now()}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
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
