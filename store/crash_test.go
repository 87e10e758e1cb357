package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
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
	"github.com/personad/personad/store"
)

// The crash test runs its own test binary as a child that ingests under
// load and prints every acknowledged event id, kills it with SIGKILL at a
// random point, and checks the database it left behind.
const (
	crashPathEnv  = "PERSONAD_CRASH_CHILD_DB"    // set in the child: the database path
	crashRoundEnv = "PERSONAD_CRASH_CHILD_ROUND" // set in the child: which round it is
	crashKillsEnv = "PERSONAD_CRASH_KILLS"       // how many kills the parent does (default 3)
)

// roundSpan separates the generated inquiries of successive rounds.
const roundSpan = 1_000_000

func TestCrash(t *testing.T) {
	kills := 3
	if s := os.Getenv(crashKillsEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashKillsEnv, s)
		}
		kills = n
	}
	path := filepath.Join(t.TempDir(), "personad.db")
	acked := map[string]int{} // event id → round it was first acknowledged in
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := range kills {
		n := runCrashChild(t, path, round, 20+rng.IntN(400), acked)
		t.Logf("round %d: killed after %d acknowledgements", round, n)
		verifyAfterCrash(t, path, acked)
	}
}

// runCrashChild starts a child on path, kills it once it acknowledged
// killAfter events, and records every acknowledgement it printed.
func runCrashChild(t *testing.T, path string, round, killAfter int, acked map[string]int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that stops acknowledging would leave the parent waiting.
	watchdog := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		id, dup, ok := parseAck(sc.Text())
		if !ok {
			continue
		}
		n++
		if first, seen := acked[id]; seen && !dup {
			t.Errorf("round %d: %s stored again, though acknowledged in round %d", round, id, first)
		}
		if _, seen := acked[id]; !seen {
			acked[id] = round
		}
		if n == killAfter {
			cmd.Process.Kill() // SIGKILL: no deferred Close, no final checkpoint
		}
	}
	err = cmd.Wait()
	if n < killAfter {
		t.Fatalf("child exited after %d acknowledgements (%v):\n%s", n, err, stderr.Bytes())
	}
	return n
}

func parseAck(line string) (id string, dup, ok bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return "", false, false
	}
	return f[1], f[2] == "dup", true
}

// verifyAfterCrash reopens the database and checks that every acknowledged
// event is stored exactly once, that every projection is the fold of its
// log, that the change feed has no gaps and chains per inquiry, and that
// the event log's hash chain holds.
func verifyAfterCrash(t *testing.T, path string, acked map[string]int) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	stored := map[string]int{}
	for _, recs := range storetest.CheckConsistent(t, db, engine.Policy{}).Events {
		for _, r := range recs {
			stored[r.EventID]++
		}
	}
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("acknowledged %s is stored %d times, want 1", id, stored[id])
		}
	}
	if rep, err := db.Verify(ctx, engine.Policy{}, nil); err != nil {
		t.Errorf("after kill: %v", err)
	} else if rep.Events == 0 {
		t.Error("after kill: the log is empty")
	}
}

// TestCrashChild is the child of TestCrash; without its environment it
// does nothing. It ingests generated inquiries, each lifecycle in a random
// order with some duplicates, plus re-deliveries of the previous round's
// events, and prints "ack <event id> new|dup" as soon as Ingest returns.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		return
	}
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	var mu sync.Mutex
	ack := func(id string, dup bool) {
		word := "new"
		if dup {
			word = "dup"
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "ack %s %s\n", id, word) // unbuffered: one write per ack
	}
	deliver := func(body []byte) {
		res, err := eng.Ingest(ctx, engine.Delivery{Body: body, ReceivedAt: time.Now(), AttemptsMade: 1})
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingest:", err)
			os.Exit(2)
		}
		ack(res.EventID, res.Duplicate)
	}
	const workers = 32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			for i := 0; ; i++ {
				n := round*roundSpan + i*workers + w
				for _, step := range rng.Perm(len(lifecycle)) {
					deliver(g.body(n, step))
					if rng.IntN(8) == 0 {
						deliver(g.body(n, step))
					}
				}
				if round > 0 && rng.IntN(4) == 0 {
					deliver(g.body((round-1)*roundSpan+rng.IntN(64), rng.IntN(len(lifecycle))))
				}
			}
		})
	}
	wg.Wait()
}
