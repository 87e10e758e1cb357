package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
)

// startStreamDaemon starts a daemon whose change stream beats every
// heartbeat.
func startStreamDaemon(t *testing.T, heartbeat time.Duration) *daemon {
	t.Helper()
	d := &daemon{t: t, dbPath: filepath.Join(t.TempDir(), "personad.db"), logs: &syncBuffer{}}
	d.Serve = NewServe(io.Discard, d.logs)
	d.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := d.ParseFlags([]string{"-db", d.dbPath, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	d.StreamHeartbeat = heartbeat
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	return d
}

// postHistory posts an inquiry's created, started and approved events:
// three changes of the feed.
func (d *daemon) postHistory(id string) {
	d.t.Helper()
	at := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	for i, ev := range []struct {
		name   string
		status engine.Status
	}{{engine.EventCreated, engine.StatusCreated}, {engine.EventStarted, engine.StatusPending}, {engine.EventApproved, engine.StatusApproved}} {
		body := storetest.Body(fmt.Sprintf("evt_%s_%d", id, i), ev.name, id, ev.status, at.Add(time.Duration(i)*time.Minute))
		if r := d.post(body, nil); r.code != http.StatusOK || r.body["outcome"] != "applied" {
			d.t.Fatalf("post %s: %d %s", ev.name, r.code, r.raw)
		}
	}
}

// sseEvent is one event, or comment, of a Server-Sent Events stream.
type sseEvent struct {
	id, event, data string
	comment         string // the text of a comment line, when it is one
}

// sseStream is an open GET /v1/changes/stream.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openStream opens the change stream at query, sending lastID as
// Last-Event-ID unless it is "". It fails the test unless the answer is a
// 200 event stream.
func (d *daemon) openStream(query, lastID string) *sseStream {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.APIAddr()+"/v1/changes/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		d.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		raw, _ := io.ReadAll(resp.Body)
		cancel()
		d.t.Fatalf("stream%s: %d %s %s", query, resp.StatusCode, ct, raw)
	}
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	d.t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next reads the next event or comment.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for seen := false; ; {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return ev
			}
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.comment = value
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			ev.data = value
		default:
			t.Fatalf("unknown field in the stream: %q", line)
		}
	}
}

// changes reads n change events, skipping comments.
func (s *sseStream) changes(t *testing.T, n int) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for len(evs) < n {
		if ev := s.next(t); ev.comment == "" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// TestChangeStreamResume: the stream serves the feed as GET /v1/changes
// lists it, each change once with its seq as the event id; a client that
// reconnects with Last-Event-ID (and the after= it first opened with)
// gets every change it missed while away and none it saw, and then the
// changes committed while it listens; an idle stream sends heartbeats.
func TestChangeStreamResume(t *testing.T) {
	d := startStreamDaemon(t, 50*time.Millisecond)
	d.postHistory("inq_s1")
	d.postHistory("inq_s2")

	var got []sseEvent
	first := d.openStream("?after=0", "")
	got = append(got, first.changes(t, 4)...)
	first.close() // gone mid-feed, as a client on a flaky network is

	d.postHistory("inq_s3") // while no one listens
	again := d.openStream("?after=0", got[len(got)-1].id)
	got = append(got, again.changes(t, 5)...)
	d.postHistory("inq_s4") // while it listens
	got = append(got, again.changes(t, 3)...)

	feed := d.get("/v1/changes?after=0&limit=1000")
	items, _ := feed.body["changes"].([]any)
	if len(items) != 12 || len(got) != 12 {
		t.Fatalf("feed has %d changes, the stream gave %d; want 12 each", len(items), len(got))
	}
	for i, ev := range got {
		want := items[i].(map[string]any)
		var data map[string]any
		if err := json.Unmarshal([]byte(ev.data), &data); err != nil {
			t.Fatalf("event %d data is not JSON: %q", i, ev.data)
		}
		if ev.event != "change" || ev.id != strconv.FormatFloat(want["seq"].(float64), 'f', -1, 64) || !reflect.DeepEqual(data, want) {
			t.Errorf("stream event %d = id %s event %s data %s; want id %v event change data %v", i, ev.id, ev.event, ev.data, want["seq"], want)
		}
	}

	// Idle now: the stream beats at the interval configured (50 ms here,
	// so one well before the default 15 s says the setting is used).
	start := time.Now()
	if ev := again.next(t); ev.comment != "heartbeat" {
		t.Fatalf("on an idle feed the stream sent %+v, want a heartbeat comment", ev)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("first heartbeat after %v, want it at the configured 50ms interval", waited)
	}
}

// TestChangeStreamRefusals: a cursor the stream cannot serve is answered
// before it starts, with a JSON error, as GET /v1/changes answers it.
func TestChangeStreamRefusals(t *testing.T) {
	d := startStreamDaemon(t, 0)
	d.postHistory("inq_r1")
	tests := []struct {
		name, query, lastID, token string
		code                       int
		errCode                    string
	}{
		{"bad after", "?after=x", "", testToken, 400, "invalid_request"},
		{"negative after", "?after=-1", "", testToken, 400, "invalid_request"},
		{"bad Last-Event-ID", "", "seven", testToken, 400, "invalid_request"},
		{"unknown parameter", "?limit=5", "", testToken, 400, "invalid_request"},
		{"after ahead", "?after=4", "", testToken, 409, "cursor_ahead"},
		{"Last-Event-ID ahead", "?after=1", "99", testToken, 409, "cursor_ahead"},
		{"no token", "", "", "", 401, "unauthorized"},
		{"wrong token", "", "", "nope", 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Bounded: a stream answered where a refusal is due never ends.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.APIAddr()+"/v1/changes/stream"+tt.query, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			if r := send(t, req); r.code != tt.code || r.errCode() != tt.errCode {
				t.Errorf("got %d %s, want %d %s", r.code, r.raw, tt.code, tt.errCode)
			}
		})
	}
	// Last-Event-ID wins over after=: at the head, nothing is repeated.
	s := d.openStream("?after=0", "3")
	d.postHistory("inq_r2")
	if ev := s.changes(t, 1)[0]; ev.id != "4" {
		t.Errorf("after Last-Event-ID 3 the stream sent %s, want 4", ev.id)
	}
}

// TestChangeStreamEndsAtShutdown: shutdown ends an open stream with the
// end of its response, at once, not by cutting the connection at the
// grace period's end.
func TestChangeStreamEndsAtShutdown(t *testing.T) {
	d := startStreamDaemon(t, time.Hour)
	d.postHistory("inq_e1")
	s := d.openStream("", "")
	s.changes(t, 3)
	stopped := make(chan time.Duration)
	go func() {
		start := time.Now()
		d.stop()
		stopped <- time.Since(start)
	}()
	rest, err := io.ReadAll(s.r)
	if err != nil {
		t.Errorf("the stream ended with %v after %q, want a clean end", err, rest)
	}
	if took := <-stopped; took >= shutdownGrace {
		t.Errorf("shutdown took %v with a stream open, want it under the %v grace", took, shutdownGrace)
	}
	if logs := d.logs.String(); strings.Contains(logs, "cut the connections") {
		t.Errorf("shutdown cut the stream's connection: %s", logs)
	}
}
