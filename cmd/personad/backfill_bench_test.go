package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/internal/persona"
	"github.com/personad/personad/internal/persona/personatest"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/store"
)

// BenchmarkBackfill imports 100 inquiries (their inquiry events, 4 KB
// bodies) from the fake Persona API over loopback HTTP into a
// new SQLite file, with the real client: at Persona's default limit of
// 300 requests a minute, and with no client-side limit. It reports
// inquiries/s and requests/s. One op is one whole backfill.
func BenchmarkBackfill(b *testing.B) {
	const inquiries = 100
	gen := loadgen.New(loadgen.Config{Seed: 16, Events: 4000, Open: 20, Epoch: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)})
	var evs []*loadgen.Event
	seen := map[string]bool{}
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		if !ev.IsInquiry() || (!seen[ev.Inquiry.ID] && len(seen) == inquiries) {
			continue
		}
		seen[ev.Inquiry.ID] = true
		evs = append(evs, ev)
	}
	fake := personatest.New(personatest.Options{APIKey: testPersonaKey})
	defer fake.Close()
	for _, ev := range evs {
		if err := fake.AddWebhookBody(ev.Body); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		rate float64
	}{{"rate=300", 300}, {"rate=none", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			client, err := persona.New(persona.Config{BaseURL: fake.URL, APIKey: testPersonaKey, RatePerMinute: bc.rate})
			if err != nil {
				b.Fatal(err)
			}
			var elapsed time.Duration
			requests := fake.Requests()
			for i := 0; b.Loop(); i++ {
				db, err := store.Open(filepath.Join(b.TempDir(), fmt.Sprintf("backfill-%d.db", i)), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				rec, err := reconcile.New(reconcile.Config{Engine: engine.New(db, engine.Policy{}), API: client})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				rep, err := rec.Backfill(context.Background(), db, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil)
				elapsed += time.Since(start)
				if err != nil || rep.Listed != inquiries || rep.Recovered != len(evs) {
					b.Fatalf("backfill: %d listed, %d recovered (want %d, %d): %v", rep.Listed, rep.Recovered, inquiries, len(evs), err)
				}
				db.Close()
			}
			b.ReportMetric(float64(inquiries*b.N)/elapsed.Seconds(), "inquiries/s")
			b.ReportMetric(float64(fake.Requests()-requests)/elapsed.Seconds(), "requests/s")
			b.ReportMetric(float64(len(evs)), "events/op")
		})
	}
}
