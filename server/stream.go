package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/personad/personad/engine"
)

// DefaultStreamHeartbeat is how often an idle change stream sends a
// comment, so that proxies and load balancers do not close it as idle and
// a client learns soon that its connection is gone.
const DefaultStreamHeartbeat = 15 * time.Second

// streamWriteTimeout bounds each write of a stream: a client that stops
// reading is dropped rather than holding its connection for ever.
const streamWriteTimeout = 30 * time.Second

// feedCursorAhead answers the 409 of a cursor beyond the feed's head (one
// kept by a consumer while the database was restored from an older
// backup), which would wait for ever or read changes it never saw as
// already seen; it reports whether it answered. after is the cursor as
// the client gave it, in the parameter named param.
func (a *api) feedCursorAhead(w http.ResponseWriter, r *http.Request, after int64, param string) bool {
	if after == 0 {
		return false
	}
	at, err := a.eng.Changes(context.WithoutCancel(r.Context()), after-1, 1)
	if err != nil {
		a.fail(w, err)
		return true
	}
	if len(at) == 0 || at[0].Seq != after {
		writeError(w, http.StatusConflict, CodeCursorAhead,
			param+"="+strconv.FormatInt(after, 10)+" is beyond the change feed's head: the database is older than the cursor (restored from a backup?); start again from after=0")
		return true
	}
	return false
}

// streamChanges serves the change feed as Server-Sent Events: one event
// per change, its id the change's seq, its data the change as
// GET /v1/changes lists it. A reconnecting EventSource sends the last id
// it saw as Last-Event-ID, which takes precedence over after= (the URL it
// reconnects to is the one it first opened), so a reconnect neither
// misses nor repeats a change. An idle stream sends a comment every
// heartbeat; the stream ends, cleanly, when the server shuts down.
func (a *api) streamChanges(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	after, param := int64(0), "after"
	if s := r.URL.Query().Get("after"); s != "" {
		var err error
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			badRequest(w, "after must be a change seq (a whole number ≥ 0)")
			return
		}
	}
	if s := strings.TrimSpace(r.Header.Get("Last-Event-ID")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, "Last-Event-ID must be the id of an event of this stream (a change seq, a whole number ≥ 0)")
			return
		}
		after, param = n, "Last-Event-ID"
	}
	if a.feedCursorAhead(w, r, after, param) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on as it comes
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	rc := http.NewResponseController(w)
	// The API server's WriteTimeout is sized for a long poll; a stream
	// sets a deadline for each write instead.
	if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		a.cfg.Logger.Error("change stream: cannot set a write deadline", "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "this connection cannot stream")
		return
	}
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	s := &stream{w: w, rc: rc}
	heartbeat := a.cfg.StreamHeartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultStreamHeartbeat
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	ctx := r.Context() // ends when the client goes or the server shuts down
	for read := true; ; {
		head, moved := a.hub.feed()
		if read || head > after {
			// Read until the feed is drained: a page full means there may
			// be more.
			for {
				page, err := a.eng.Changes(ctx, after, MaxChanges)
				if err != nil {
					if ctx.Err() == nil {
						a.cfg.Logger.Error("change stream: read failed", "err", err)
					}
					return // the client reconnects with Last-Event-ID
				}
				if len(page) > 0 && !a.authorized(r) {
					return // the token was rotated away: reconnect with the new one
				}
				for _, c := range page {
					if s.change(c) != nil {
						return
					}
					after = c.Seq
				}
				if len(page) > 0 && s.flush() != nil {
					return
				}
				if len(page) < MaxChanges {
					break
				}
			}
		}
		read = false
		select {
		case <-moved:
		case <-tick.C:
			// Read once more on each beat: a commit the engine could not
			// report (its caller's deadline passed first) moves no head.
			read = true
			if !a.authorized(r) || s.comment("heartbeat") != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// stream writes Server-Sent Events.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

func (s *stream) change(c engine.Change) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// JSON has no raw newline, so the data is one data: line.
	s.buf = append(s.buf[:0], "id: "...)
	s.buf = strconv.AppendInt(s.buf, c.Seq, 10)
	s.buf = append(s.buf, "\nevent: change\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	return s.write()
}

func (s *stream) comment(text string) error {
	s.buf = append(append(append(s.buf[:0], ": "...), text...), "\n\n"...)
	if err := s.write(); err != nil {
		return err
	}
	return s.flush()
}

func (s *stream) write() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := s.w.Write(s.buf)
	return err
}

func (s *stream) flush() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	return s.rc.Flush()
}
