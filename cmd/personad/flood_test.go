package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/server"
)

// heapLive returns the bytes of live heap after a collection.
func heapLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rssBytes returns this process's resident set size (0 where /proc is
// not there).
func rssBytes() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stallUploads keeps n connections to addr each uploading a declared
// 1 MiB body that stops one byte short, reconnecting whenever the daemon
// ends one, until stop is closed. Each well-formed, fresh signature
// header passes every check that can be made before the body.
func stallUploads(addr string, n int, stop <-chan struct{}) (wait func()) {
	chunk := bytes.Repeat([]byte(" "), 1<<20-1)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				go func() { <-stop; c.Close() }()
				sig := "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v1=" + strings.Repeat("0", 64)
				c.Write([]byte("POST " + server.WebhookPath + " HTTP/1.1\r\nHost: personad\r\nContent-Type: application/json\r\n" +
					"Content-Length: " + strconv.Itoa(1<<20) + "\r\n" + server.SignatureHeader + ": " + sig + "\r\n\r\n"))
				c.Write(chunk)
				// Stalled: wait for the daemon to give up on us.
				c.Read(make([]byte, 1))
				c.Close()
			}
		})
	}
	return wg.Wait
}

// TestStalledUploadFlood: 200 uploads of a declared 1 MiB body that
// stall one byte short cost the daemon a bounded amount of memory (the
// large-body read slots), not 200 MiB, and real deliveries are served
// throughout.
func TestStalledUploadFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the daemon")
	}
	d := startDaemon(t, defaultEnv())
	good := readFixture(t, "inquiry.started.json")
	baseHeap, baseRSS := heapLive(), rssBytes()

	stop := make(chan struct{})
	wait := stallUploads(d.WebhookAddr(), 200, stop)
	var peakHeap, peakRSS uint64
	sample := func() {
		peakHeap, peakRSS = max(peakHeap, heapLive()), max(peakRSS, rssBytes())
	}
	client := &http.Client{Timeout: 4 * time.Second}
	deadline := time.Now().Add(3 * time.Second)
	delivered := 0
	for time.Now().Before(deadline) {
		sample()
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+server.WebhookPath, bytes.NewReader(good))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(good, time.Now(), []byte(testSecret)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("a real delivery during the flood: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a real delivery during the flood: %d, want 200", resp.StatusCode)
		}
		delivered++
		time.Sleep(100 * time.Millisecond)
	}
	sample()
	close(stop)
	wait()

	grew := int64(peakHeap) - int64(baseHeap)
	t.Logf("200 stalled 1 MiB uploads: live heap %d → %d MiB (peak), RSS %d → %d MiB (peak); %d real deliveries served meanwhile",
		baseHeap>>20, peakHeap>>20, baseRSS>>20, peakRSS>>20, delivered)
	// 16 large-body slots of 1 MiB and a few KB per waiting connection.
	if limit := int64(64 << 20); grew > limit {
		t.Errorf("live heap grew by %d MiB under the flood, want at most %d MiB", grew>>20, limit>>20)
	}
}

// TestMaxConns: past -max-conns, a connection waits to be accepted, and
// is served once another ends.
func TestMaxConns(t *testing.T) {
	d := startDaemon(t, defaultEnv(), "-max-conns", "2")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", d.WebhookAddr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("POST " + server.WebhookPath + " HTTP/1.1\r\n")) // the head never ends
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	good := readFixture(t, "inquiry.started.json")
	post := func(timeout time.Duration) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.WebhookAddr()+server.WebhookPath, bytes.NewReader(good))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(good, time.Now(), []byte(testSecret)))
		client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post(500 * time.Millisecond); err == nil {
		t.Errorf("a third connection was served (%d) while -max-conns 2 were held", code)
	}
	held[0].Close()
	if code, err := post(5 * time.Second); err != nil || code != http.StatusOK {
		t.Errorf("once a held connection closed: %d %v, want 200", code, err)
	}
}
