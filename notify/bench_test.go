package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/notify"
	"github.com/personad/personad/store"
)

// BenchmarkPush measures push throughput: a feed of 3,000 changes sent
// from its start to a receiver on loopback that answers 204, one endpoint
// at a time, the store at synchronous=full. It reports changes/s.
func BenchmarkPush(b *testing.B) {
	const lifecycles = 1000
	db, err := store.Open(filepath.Join(b.TempDir(), "personad.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	eng := engine.New(db, engine.Policy{})
	ctx := context.Background()
	for i := range lifecycles {
		id := fmt.Sprintf("inq_bench%d", i)
		for j, s := range []struct {
			name   string
			status engine.Status
		}{{engine.EventCreated, engine.StatusCreated}, {engine.EventStarted, engine.StatusPending}, {engine.EventCompleted, engine.StatusCompleted}} {
			body := storetest.Body(fmt.Sprintf("evt_%s_%d", id, j), s.name, id, s.status, t0.Add(time.Duration(j)*time.Second))
			if _, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	head, _ := db.ChangesHead(ctx)
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	k, _ := notify.ParseSecret(testSecret)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		got.Store(0)
		n, err := notify.Start(ctx, notify.Config{Engine: eng, DB: db, URLs: []string{fmt.Sprintf("%s/%d", srv.URL, i)},
			Key: k, FromStart: true, Poll: 10 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		for got.Load() < head {
			time.Sleep(time.Millisecond)
		}
		n.Close(ctx)
	}
	b.ReportMetric(float64(head)*float64(b.N)/time.Since(start).Seconds(), "changes/s")
}
