package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

// The daemon crash test runs the real daemon as a child process (this test
// binary, re-executed with crashChildDBEnv set), loads it with generated
// webhooks from several senders, kills it with SIGKILL at a random point,
// restarts it on the same file and redelivers everything that was not
// acknowledged, as Persona's retries would. After every kill it checks
// what the file holds.
const (
	crashChildDBEnv = "PERSONAD_CRASH_CHILD_DB" // set in the child: serve this database
	crashKillsEnv   = "PERSONAD_CRASH_KILLS"    // how many kills (default 3)
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildDBEnv); path != "" {
		os.Exit(serveCrashChild(path))
	}
	if args := os.Getenv(mainChildArgsEnv); args != "" {
		os.Exit(runMainChild(args))
	}
	os.Exit(m.Run())
}

// serveCrashChild is the child: it serves path on loopback, says where,
// and runs until it is killed.
func serveCrashChild(path string) int {
	s := NewServe(io.Discard, os.Stderr)
	s.Getenv = func(k string) string { return defaultEnv()[k] }
	if err := s.ParseFlags([]string{"-db", path, "-listen", "127.0.0.1:0", "-api-listen", "127.0.0.1:0", "-log-format", "json"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := s.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ready %s %s\n", s.WebhookAddr(), s.APIAddr())
	select {}
}

func TestDaemonCrashRecovery(t *testing.T) {
	kills := 3
	if s := os.Getenv(crashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, s)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d, %d kills", seed, kills)

	// Enough events that every round is killed mid-load.
	gen := loadgen.New(loadgen.Config{Seed: seed, Events: 400 * (kills + 1), Open: 50})
	var events []*loadgen.Event
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		events = append(events, ev)
	}
	path := filepath.Join(t.TempDir(), "personad.db")
	acked := make([]bool, len(events))
	for round := 0; round <= kills; round++ {
		child := startCrashChild(t, path)
		killAfter := 50 + rng.IntN(300)
		last := round == kills
		if last {
			killAfter = -1 // deliver everything, then kill
		}
		n := deliverUntil(t, child.webhook, events, acked, killAfter, rng, func() { child.kill() })
		child.kill()
		t.Logf("round %d: %d acknowledgements", round, n)
		verifyCrashedFile(t, path, events, acked, last)
		if t.Failed() {
			t.Fatalf("round %d failed (seed %d)", round, seed)
		}
	}
}

type crashChild struct {
	cmd     *exec.Cmd
	webhook string
	once    sync.Once
}

// startCrashChild starts the daemon on path and waits until it listens.
func startCrashChild(t *testing.T, path string) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildDBEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{cmd: cmd}
	t.Cleanup(c.kill)
	type readyLine struct {
		line string
		err  error
	}
	ready := make(chan readyLine, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		ready <- readyLine{line, err}
	}()
	var line string
	select {
	case r := <-ready:
		line, err = r.line, r.err
	case <-time.After(time.Minute):
		err = errors.New("no ready line within a minute")
	}
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		c.kill()
		t.Fatalf("daemon did not start: %q %v\n%s", line, err, stderr.Bytes())
	}
	c.webhook = "http://" + f[1] + server.WebhookPath
	return c
}

// kill sends SIGKILL: no graceful shutdown, no final checkpoint.
func (c *crashChild) kill() {
	c.once.Do(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
}

// deliverUntil posts every event not yet acknowledged from 16 senders, in
// a shuffled order (with some events sent twice at once), and calls kill
// once killAfter of them were acknowledged (never when killAfter < 0). It
// marks what was acknowledged in acked and returns how many were.
func deliverUntil(t *testing.T, url string, events []*loadgen.Event, acked []bool, killAfter int, rng *rand.Rand, kill func()) int {
	t.Helper()
	var todo []int
	for i := range events {
		if !acked[i] {
			todo = append(todo, i)
			if rng.IntN(10) == 0 {
				todo = append(todo, i) // a concurrent retry
			}
		}
	}
	rng.Shuffle(len(todo), func(a, b int) { todo[a], todo[b] = todo[b], todo[a] })
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var (
		mu    sync.Mutex
		n     int
		next  int
		wg    sync.WaitGroup
		fails int
	)
	for range 16 {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(todo) || (killAfter >= 0 && n >= killAfter) {
					mu.Unlock()
					return
				}
				i := todo[next]
				next++
				mu.Unlock()
				code, err := postEvent(client, url, events[i].Body)
				mu.Lock()
				switch {
				case err == nil && code == http.StatusOK:
					if !acked[i] {
						acked[i] = true
						n++
						if n == killAfter {
							kill()
						}
					}
				case err == nil && code != http.StatusServiceUnavailable:
					t.Errorf("event %s answered %d", events[i].ID, code)
				default:
					fails++ // cut off by the kill: Persona would retry
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if killAfter < 0 && fails > 0 {
		t.Errorf("%d deliveries failed with no kill", fails)
	}
	return n
}

func postEvent(client *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(testSecret)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// verifyCrashedFile reopens the database the killed daemon left and checks
// that every acknowledged event is stored exactly once and intact, that
// no event is half-stored (every projection is the fold of its log), that
// the change feed has no gap or repeat, and, once everything was
// delivered, that every inquiry ends as the generator's ground truth says.
func verifyCrashedFile(t *testing.T, path string, events []*loadgen.Event, acked []bool, complete bool) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()

	stored := storedEvents(t, path)
	redacted, logged := map[string]bool{}, map[string]bool{}
	for i, ev := range events {
		s, ok := stored[ev.ID]
		switch {
		case acked[i] && !ok:
			t.Errorf("acknowledged event %s is not stored", ev.ID)
		case ok && s.sum != sha256.Sum256(ev.Body):
			t.Errorf("event %s is stored with the SHA-256 of another body", ev.ID)
		}
		if ev.IsInquiry() && ok {
			logged[ev.Inquiry.ID] = true
			redacted[ev.Inquiry.ID] = redacted[ev.Inquiry.ID] || s.name == engine.EventRedacted
		}
	}
	if complete && len(stored) != len(events) {
		t.Errorf("%d events stored, %d generated", len(stored), len(events))
	}

	contents := storetest.CheckConsistent(t, db, engine.Policy{})
	checked := map[string]bool{}
	for _, ev := range events {
		id := ev.Inquiry.ID
		if checked[id] || !ev.IsInquiry() {
			continue
		}
		checked[id] = true
		inq, ok := contents.Inquiries[id]
		switch {
		case !ok && logged[id]:
			t.Errorf("%s has stored events and no projection", id)
		case !ok:
		case inq.Redacted != redacted[id]:
			t.Errorf("%s: redacted %v, but its log says %v", id, inq.Redacted, redacted[id])
		case complete && (inq.Status != ev.Inquiry.Final.Status || inq.Decision != ev.Inquiry.Final.Decision || inq.Redacted != ev.Inquiry.Final.Redacted):
			truth := ev.Inquiry.Final
			t.Errorf("%s: projection %s/%s/%v, ground truth %s/%s/%v", id,
				inq.Status, inq.Decision, inq.Redacted, truth.Status, truth.Decision, truth.Redacted)
		}
	}
}

type storedEvent struct {
	name string
	sum  [32]byte
}

// storedEvents reads the event log's ids, names and hashes straight from
// the file; the UNIQUE constraint on event_id is what "exactly once"
// rests on; a second row would show as an event id read twice.
func storedEvents(t *testing.T, path string) map[string]storedEvent {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT event_id, name, sha256 FROM events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]storedEvent{}
	for rows.Next() {
		var (
			id, name string
			sum      []byte
		)
		if err := rows.Scan(&id, &name, &sum); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Errorf("event %s is stored twice", id)
		}
		var s storedEvent
		s.name = name
		copy(s.sum[:], sum)
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
