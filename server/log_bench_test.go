package server_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// BenchmarkWebhookLogLevel measures the webhook handler, called directly
// (no network), storing distinct events into a MemoryStore with a JSON
// logger writing to io.Discard: at -log-level debug every stored delivery
// writes its "webhook stored" line, at info (the default) none does. The
// difference per op is what the per-delivery line costs.
func BenchmarkWebhookLogLevel(b *testing.B) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		b.Run("level="+level.String(), func(b *testing.B) {
			// A new handler on an empty store, so that every body is new.
			newHandler := func() http.Handler {
				h, err := server.NewWebhookHandler(server.WebhookConfig{Engine: engine.New(engine.NewMemoryStore(), engine.Policy{}),
					Secrets: [][]byte{secretA}, MaxBody: 64 << 10,
					Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))})
				if err != nil {
					b.Fatal(err)
				}
				return h
			}
			h := newHandler()
			at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
			bodies := make([][]byte, 0, 4096)
			for i := range cap(bodies) {
				bodies = append(bodies, event(fmt.Sprintf("evt_%d", i), "inquiry.created", fmt.Sprintf("inq_%d", i), engine.StatusCreated, at))
			}
			i := 0
			for b.Loop() {
				if i == len(bodies) {
					b.StopTimer()
					h, i = newHandler(), 0
					b.StartTimer()
				}
				body := bodies[i]
				i++
				req := httptest.NewRequest(http.MethodPost, server.WebhookPath, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), secretA))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
