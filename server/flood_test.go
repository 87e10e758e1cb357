package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// rawRequest writes a webhook request's head to addr, declaring a body of
// length bytes, and leaves the connection open for the caller.
func rawRequest(t *testing.T, addr, sig string, length int, extra string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := "POST " + server.WebhookPath + " HTTP/1.1\r\nHost: personad\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(length) + "\r\n" + extra
	if sig != "" {
		head += server.SignatureHeader + ": " + sig + "\r\n"
	}
	if _, err := c.Write([]byte(head + "\r\n")); err != nil {
		t.Fatal(err)
	}
	return c
}

// statusLine reads the next response's status line from c.
func statusLine(t *testing.T, br *bufio.Reader, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no status line: %v (read %q)", err, line)
	}
	return strings.TrimSpace(line)
}

// TestRefusedBeforeTheBody: a request whose Persona-Signature header is
// missing, malformed or outside the tolerance is refused from its head,
// so a client that asks "Expect: 100-continue" never gets told to send a
// body that would be thrown away; one with a fresh header is.
func TestRefusedBeforeTheBody(t *testing.T) {
	f := newFixture(t, "", nil)
	body := event("evt_1", engine.EventStarted, "inq_1", engine.StatusPending, t0)
	now := time.Now()
	for _, tt := range []struct {
		name, sig, want string
	}{
		{"missing", "", "HTTP/1.1 401 Unauthorized"},
		{"malformed", "t=,v1=", "HTTP/1.1 401 Unauthorized"},
		{"no t", "v1=" + strings.Repeat("0", 64), "HTTP/1.1 401 Unauthorized"},
		{"expired", server.SignatureHeaderValue(body, now.Add(-time.Hour), secretA), "HTTP/1.1 401 Unauthorized"},
		{"future", server.SignatureHeaderValue(body, now.Add(time.Hour), secretA), "HTTP/1.1 401 Unauthorized"},
		{"one stale set of two, the fresh one signs", "t=1,v1=00 " + server.SignatureHeaderValue(body, now, secretA), "HTTP/1.1 100 Continue"},
		{"fresh", server.SignatureHeaderValue(body, now, secretA), "HTTP/1.1 100 Continue"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawRequest(t, f.webhook.Listener.Addr().String(), tt.sig, len(body), "Expect: 100-continue\r\n")
			br := bufio.NewReader(c)
			if got := statusLine(t, br, c); got != tt.want {
				t.Fatalf("first answer %q, want %q", got, tt.want)
			}
			if !strings.HasPrefix(tt.want, "HTTP/1.1 100") {
				return
			}
			for { // the rest of the 100 response: an empty line
				if l := statusLine(t, br, c); l == "" {
					break
				}
			}
			c.Write(body)
			if got := statusLine(t, br, c); got != "HTTP/1.1 200 OK" {
				t.Errorf("after the body: %q, want 200", got)
			}
		})
	}
}

// TestBodyReadSlots: uploads that stall while holding every large-body
// read slot neither keep a small delivery waiting nor hold their slot
// past BodyTimeout; a large upload that finds no slot in time is a 503
// with Retry-After.
func TestBodyReadSlots(t *testing.T) {
	f := newFixture(t, "", func(c *server.WebhookConfig) {
		c.MaxBody = 1 << 20
		c.BodyReads = 1
		c.SlotWait = 100 * time.Millisecond
		c.BodyTimeout = time.Second
	})
	addr := f.webhook.Listener.Addr().String()
	fresh := "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v1=" + strings.Repeat("0", 64)
	stalled := rawRequest(t, addr, fresh, 1<<20, "")
	stalled.Write(bytes.Repeat([]byte(" "), 100<<10)) // then nothing more
	start := time.Now()

	// Give the stalled upload time to take its slot.
	time.Sleep(100 * time.Millisecond)
	large := bytes.Repeat([]byte(" "), server.SmallBody+1)
	code, v := f.post(t, large, nil)
	if code != http.StatusServiceUnavailable || errCode(v) != server.CodeUnavailable {
		t.Errorf("large upload while the slot is held: %d %v, want 503", code, v)
	}
	for i := range 5 {
		body := event(fmt.Sprintf("evt_%d", i), engine.EventStarted, "inq_1", engine.StatusPending, t0)
		if code, v := f.post(t, body, nil); code != http.StatusOK {
			t.Errorf("small delivery %d while the large slot is held: %d %v, want 200", i, code, v)
		}
	}
	br := bufio.NewReader(stalled)
	if got := statusLine(t, br, stalled); got != "HTTP/1.1 408 Request Timeout" {
		t.Errorf("stalled upload answered %q, want 408", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stalled upload held its slot %v, want about BodyTimeout (1s)", d)
	}
	if code, v := f.post(t, large, nil); code != http.StatusOK {
		t.Errorf("large upload once the slot is free: %d %v, want 200 (a dead letter)", code, v)
	}
}

// TestRetryAfterOnNoSlot checks the 503's Retry-After header.
func TestRetryAfterOnNoSlot(t *testing.T) {
	f := newFixture(t, "", func(c *server.WebhookConfig) {
		c.MaxBody = 1 << 20
		c.BodyReads = 1
		c.SlotWait = 50 * time.Millisecond
	})
	fresh := "t=" + strconv.FormatInt(time.Now().Unix(), 10) + ",v1=" + strings.Repeat("0", 64)
	rawRequest(t, f.webhook.Listener.Addr().String(), fresh, 1<<20, "").Write([]byte("{"))
	time.Sleep(100 * time.Millisecond)
	large := bytes.Repeat([]byte(" "), server.SmallBody+1)
	req, _ := http.NewRequest(http.MethodPost, f.webhook.URL, bytes.NewReader(large))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(large, time.Now(), secretA))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
