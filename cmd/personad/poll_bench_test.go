package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/personad/personad/server"
)

// BenchmarkDeliveryWithParkedPolls measures a delivery's latency, one
// delivery at a time, to the real daemon on a temp SQLite database, with
// no long poll parked and with 1,500 decision polls parked on inquiries
// the deliveries never touch: a change should wake only the polls it
// concerns. It reports p50 and p99 in milliseconds.
//
// The daemon's long polls end within 60 s: keep a run shorter.
//
//	go test ./cmd/personad -run '^$' -bench DeliveryWithParkedPolls -benchtime 2000x
func BenchmarkDeliveryWithParkedPolls(b *testing.B) {
	for _, parked := range []int{0, 1500} {
		b.Run(fmt.Sprintf("parked=%d", parked), func(b *testing.B) {
			s := NewServe(io.Discard, io.Discard)
			s.Getenv = func(k string) string { return defaultEnv()[k] }
			if err := s.ParseFlags([]string{"-db", filepath.Join(b.TempDir(), "personad.db"),
				"-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-max-conns", "4096"}); err != nil {
				b.Fatal(err)
			}
			if err := s.Start(); err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())

			// Each parked poll is a bare connection with its request
			// written and its answer never read, so that the benchmark's
			// own client costs no goroutine per poll.
			for i := range parked {
				c, err := net.Dial("tcp", s.APIAddr())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "GET /v1/inquiries/inq_parked%04d/decision?wait=60s HTTP/1.1\r\nHost: personad\r\nAuthorization: Bearer %s\r\n\r\n", i, testToken)
			}
			time.Sleep(time.Second) // for the daemon to park the last ones

			tmpl, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "inquiry.created.json"))
			if err != nil {
				b.Fatal(err)
			}
			client := &http.Client{}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				body := bytes.ReplaceAll(tmpl, []byte("inq_kT4xVnR2bPmYwL9sTgD3cExZ"), fmt.Appendf(nil, "inq_bench%019d", i))
				body = bytes.ReplaceAll(body, []byte("evt_qmO807C6J0v9NAOwiuUhYREG"), fmt.Appendf(nil, "evt_bench%019d", i))
				req, _ := http.NewRequest(http.MethodPost, "http://"+s.WebhookAddr()+server.WebhookPath, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(testSecret)))
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("delivery %d: %d", i, resp.StatusCode)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}
