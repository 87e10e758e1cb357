package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/scenarios/*.txt")

// A scenario transcript is a list of deliveries, a line "----", then the
// output personad must produce: each delivery's result in arrival order,
// the fold of the whole history, the projection and the change feed.
//
//	policy auto-decide
//	deliver <event-id> <event-name> <status|-> <time> [ref=..] [tags=a,b] [redacted-at=..] [account=..] [template=..] [inquiry=..]
//	again <event-id>            redeliver an earlier event's exact body
//	permute all|<n>             also check every permutation, or n random ones (default 200)
//
// Times are "HH:MM[:SS[.mmm]]" on 2024-03-15 UTC, or full RFC 3339.
// Run `go test ./engine -run TestScenarios -rewrite` to regenerate output.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			sc := readScenario(t, file)
			got := sc.run(t, sc.deliveries)
			if *rewrite {
				if err := os.WriteFile(file, []byte(sc.input+"----\n"+got.transcript), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got.transcript != sc.want {
				t.Errorf("transcript differs (run with -rewrite to accept)\n--- got\n%s--- want\n%s", got.transcript, sc.want)
			}
			sc.checkPermutations(t, got)
		})
	}
}

type scenario struct {
	input, want string
	policy      engine.Policy
	deliveries  [][]byte
	permute     int // -1: all permutations
}

func readScenario(t *testing.T, file string) *scenario {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	input, want, _ := strings.Cut(string(raw), "----\n")
	sc := &scenario{input: input, want: want, permute: 200}
	bodies := map[string][]byte{}
	sn := bufio.NewScanner(strings.NewReader(input))
	for line := 1; sn.Scan(); line++ {
		f := strings.Fields(sn.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fail := func(msg string, args ...any) { t.Fatalf("%s:%d: %s", file, line, fmt.Sprintf(msg, args...)) }
		switch f[0] {
		case "policy":
			sc.policy.AutoDecide = len(f) == 2 && f[1] == "auto-decide"
		case "permute":
			if len(f) == 2 && f[1] == "all" {
				sc.permute = -1
			} else if len(f) != 2 || sscan(f[1], &sc.permute) != nil {
				fail("permute all|<n>")
			}
		case "again":
			b, ok := bodies[f[1]]
			if len(f) != 2 || !ok {
				fail("again <earlier event id>")
			}
			sc.deliveries = append(sc.deliveries, b)
		case "deliver":
			if len(f) < 5 {
				fail("deliver <id> <name> <status|-> <time> [key=value...]")
			}
			spec := eventSpec{ID: f[1], Name: f[2], Status: f[3]}
			if spec.Status == "-" {
				spec.Status = ""
			}
			var err error
			if spec.At, err = at(f[4]); err != nil {
				fail("%v", err)
			}
			for _, kv := range f[5:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "ref":
					spec.Ref = v
				case "tags":
					spec.Tags = strings.FieldsFunc(v, func(r rune) bool { return r == ',' })
				case "redacted-at":
					ts, err := at(v)
					if err != nil {
						fail("%v", err)
					}
					spec.RedactedAt = ts.Format(time.RFC3339Nano)
				case "account":
					spec.Account = v
				case "template":
					spec.Template = v
				case "inquiry":
					spec.Inquiry = v
				default:
					fail("unknown key %q", k)
				}
			}
			bodies[spec.ID] = spec.body()
			sc.deliveries = append(sc.deliveries, bodies[spec.ID])
		default:
			fail("unknown directive %q", f[0])
		}
	}
	return sc
}

func sscan(s string, n *int) error {
	_, err := fmt.Sscan(s, n)
	return err
}

type scenarioResult struct {
	transcript string
	folded     string // fold and projection only: what must not depend on order
}

// run delivers bodies in order to a fresh engine and renders what it did.
func (sc *scenario) run(t *testing.T, deliveries [][]byte) scenarioResult {
	t.Helper()
	ctx := context.Background()
	eng := engine.New(engine.NewMemoryStore(), sc.policy)
	var out bytes.Buffer
	out.WriteString("deliveries (arrival order):\n")
	received := time.Date(2024, 3, 16, 0, 0, 0, 0, time.UTC)
	inquiries := map[string]bool{}
	var order []string
	for _, b := range deliveries {
		received = received.Add(time.Second)
		res, err := eng.Ingest(ctx, engine.Delivery{Body: b, ReceivedAt: received, AttemptsMade: 1})
		if err != nil {
			t.Fatalf("ingest: %v", err)
		}
		fmt.Fprintf(&out, "  %s %s: %s duplicate=%t %s -> %s\n", res.EventID, res.Name, res.Outcome, res.Duplicate, show(res.Before), show(res.After))
		if res.InquiryID != "" && !inquiries[res.InquiryID] {
			inquiries[res.InquiryID] = true
			order = append(order, res.InquiryID)
		}
	}
	slices.Sort(order)
	var folded bytes.Buffer
	for _, id := range order {
		hist, err := eng.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&folded, "fold of %s (event-time order):\n", id)
		for _, e := range hist {
			via := ""
			if len(e.Step.Via) > 0 {
				via = fmt.Sprintf(" via %v", e.Step.Via)
			}
			fmt.Fprintf(&folded, "  %s %s %s: %s %s -> %s%s\n", e.EventID, e.Name, show(e.Status), e.Step.Outcome, show(e.Step.From), show(e.Step.To), via)
		}
		inq, err := eng.Inquiry(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		pj, err := json.MarshalIndent(inq, "  ", "  ")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&folded, "projection:\n  %s\n", pj)
	}
	out.Write(folded.Bytes())
	changes, err := eng.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out.WriteString("changes (arrival order):\n")
	for _, c := range changes {
		fmt.Fprintf(&out, "  %d %s %s: %s -> %s decision=%s redacted=%t\n", c.Seq, c.InquiryID, c.EventID, show(c.FromStatus), show(c.ToStatus), show(c.Decision), c.Redacted)
	}
	return scenarioResult{transcript: out.String(), folded: folded.String()}
}

func show(s engine.Status) string {
	if s == "" {
		return "-"
	}
	return string(s)
}

// checkPermutations delivers the same bodies in other orders: the fold and
// the projection must come out identical every time.
func (sc *scenario) checkPermutations(t *testing.T, want scenarioResult) {
	t.Helper()
	n := len(sc.deliveries)
	try := func(perm []int) {
		d := make([][]byte, n)
		for i, j := range perm {
			d[i] = sc.deliveries[j]
		}
		if got := sc.run(t, d); got.folded != want.folded {
			t.Fatalf("order %v changes the result\n--- got\n%s--- want\n%s", perm, got.folded, want.folded)
		}
	}
	if sc.permute < 0 {
		permutations(n, try)
		return
	}
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for range sc.permute {
		try(rng.Perm(n))
	}
}

// permutations calls fn with every permutation of 0..n-1 (Heap's algorithm).
func permutations(n int, fn func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	fn(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			fn(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}
