package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/personad/personad/notify"
)

// benchNotify is bench's push to an application: -notify-url passes URLs
// to the daemon the bench starts, -notify starts a receiver in this process
// for it and reports how the push kept up.
type benchNotify struct {
	urls  []string
	local bool
	recv  *benchReceiver
}

func (n *benchNotify) register(fs *flag.FlagSet) {
	fs.Func("notify-url", "with a daemon the bench starts: it also pushes its change feed to this URL (as serve -notify-url; may be repeated)", func(u string) error {
		if err := notify.CheckURL(u); err != nil {
			return err
		}
		n.urls = append(n.urls, u)
		return nil
	})
	fs.BoolVar(&n.local, "notify", false, "with a daemon the bench starts: it pushes its change feed to a receiver in this process (answering 204), and the push's throughput and lag are reported")
}

func (n *benchNotify) given() bool { return len(n.urls) > 0 || n.local }

// daemonArgs starts the local receiver when asked and returns the serve
// flags and the secret for the daemon.
func (n *benchNotify) daemonArgs() (args []string, secret string, err error) {
	if !n.given() {
		return nil, "", nil
	}
	urls := n.urls
	if n.local {
		if n.recv, err = startBenchReceiver(); err != nil {
			return nil, "", err
		}
		urls = append(urls, n.recv.url)
	}
	for _, u := range urls {
		args = append(args, "-notify-url", u)
	}
	return append(args, "-notify-from", "start"), "whsec_" + base64.StdEncoding.EncodeToString([]byte(randomHex(16))), nil
}

// report waits (up to a minute) for the local receiver to have every
// change of the feed and prints how the push went.
func (n *benchNotify) report(ctx context.Context, w io.Writer, changesHead func(context.Context) (int64, error), loadEnd time.Time) {
	if n.recv == nil {
		return
	}
	head, err := changesHead(ctx)
	if err != nil {
		fmt.Fprintf(w, "push: reading the feed's head: %v\n", err)
		return
	}
	behind := head - n.recv.count()
	for deadline := time.Now().Add(time.Minute); n.recv.count() < head && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(5 * time.Millisecond)
	}
	got, first, last := n.recv.stats()
	secs := last.Sub(first).Seconds()
	fmt.Fprintf(w, "push (to a receiver in this process):\n")
	fmt.Fprintf(w, "  delivered     %s of %s changes in %.2fs: %s changes/s; %s behind when the load ended, caught up %.2fs after\n",
		thousands(got), thousands(head), secs, thousands(int64(float64(got)/max(secs, 1e-9))), thousands(max(behind, 0)),
		max(last.Sub(loadEnd).Seconds(), 0))
}

// benchReceiver is an application endpoint that counts what it is sent.
type benchReceiver struct {
	url         string
	srv         *http.Server
	mu          sync.Mutex
	n           int64
	first, last time.Time
}

func startBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String() + "/hooks/personad"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		now := time.Now()
		r.mu.Lock()
		if r.n == 0 {
			r.first = now
		}
		r.n++
		r.last = now
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *benchReceiver) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *benchReceiver) stats() (n int64, first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n, r.first, r.last
}

func (n *benchNotify) close() {
	if n.recv != nil {
		n.recv.srv.Close()
	}
}
