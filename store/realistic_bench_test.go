package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/store"
)

// realisticEvents is how many events one op of BenchmarkIngestRealistic
// ingests.
const realisticEvents = 20_000

// BenchmarkIngestRealistic is BenchmarkIngest fed the stream personad
// bench sends (internal/loadgen): random ids, 200 inquiries in progress at
// once, related objects (verifications, reports, accounts), redactions,
// 2–8 KB bodies; in the stream's created-at order, and fully shuffled (every
// inquiry's events late or early). It is the store's figure to compare
// across changes to the write path: sequential ids and short histories
// (BenchmarkIngest) hide what scattered B-tree pages and re-folds cost.
// write-B/event is every byte the process handed to write(2) during the
// op (/proc/self/io wchar: WAL frames and checkpoints), per event; 0 where
// /proc is not there. Run with -benchtime 2x.
func BenchmarkIngestRealistic(b *testing.B) {
	gen := loadgen.New(loadgen.Config{Seed: 15, Events: realisticEvents})
	var stream [][]byte
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		stream = append(stream, ev.Body)
	}
	shuffled := append([][]byte(nil), stream...)
	rand.New(rand.NewPCG(15, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, order := range []struct {
		name   string
		bodies [][]byte
	}{{"stream", stream}, {"shuffled", shuffled}} {
		b.Run(fmt.Sprintf("conc=64/order=%s", order.name), func(b *testing.B) {
			var (
				elapsed         time.Duration
				written         int64
				diskBytes       int64
				batches, events atomic.Int64
			)
			opts := store.Options{OnBatch: func(n int) { batches.Add(1); events.Add(int64(n)) }}
			for b.Loop() {
				run := ingestIntoNew(b, opts, order.bodies, 64)
				elapsed += run.elapsed
				written += run.written
				diskBytes = run.diskBytes
			}
			n := float64(b.N * len(order.bodies))
			b.ReportMetric(n/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(written)/n, "write-B/event")
			b.ReportMetric(float64(diskBytes)/float64(len(order.bodies)), "disk-B/event")
			b.ReportMetric(float64(events.Load())/float64(batches.Load()), "events/commit")
		})
	}
}

// wchar returns the bytes this process has passed to write(2) and its
// kin (/proc/self/io), or 0 without /proc.
func wchar() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("wchar: ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	return 0
}
