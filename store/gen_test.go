package store_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// generator makes distinct, realistic ~4 KB inquiry events from the
// compact form of the reusable-persona-created fixture. Its ids are
// sequential unless random is set; Persona's are random, which scatters
// index writes across the B-trees.
type generator struct {
	template string
	random   bool
}

func newGenerator(tb testing.TB) *generator {
	tb.Helper()
	return &generator{template: string(compact(tb, fixture(tb, "inquiry.reusable-persona-created.json")))}
}

// lifecycle is the events each generated inquiry goes through.
var lifecycle = []struct {
	name   string
	status engine.Status
}{
	{engine.EventCreated, engine.StatusCreated},
	{engine.EventStarted, engine.StatusPending},
	{engine.EventCompleted, engine.StatusCompleted},
	{engine.EventApproved, engine.StatusApproved},
}

var genEpoch = time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)

// body returns the step-th lifecycle event of the n-th inquiry.
func (g *generator) body(n, step int) []byte {
	ev := lifecycle[step%len(lifecycle)]
	at := genEpoch.Add(time.Duration(n)*time.Millisecond + time.Duration(step)*time.Minute)
	return []byte(strings.NewReplacer(
		"evt_1GuHPLFC9LjXFY8YoOTrgNLj", g.eventID(n, step),
		"inq_kT4xVnR2bPmYwL9sTgD3cExZ", g.inquiryID(n),
		"2024-03-15T18:40:00.100Z", at.Format(engine.TimeFormat),
		"inquiry.reusable-persona-created", ev.name,
		`"status":"approved"`, fmt.Sprintf(`"status":%q`, ev.status),
	).Replace(g.template))
}

func (g *generator) eventID(n, step int) string {
	if g.random {
		return "evt_" + scrambled(fmt.Sprint("evt", n, step))
	}
	return fmt.Sprintf("evt_gen%09d_%d", n, step)
}

func (g *generator) inquiryID(n int) string {
	if g.random {
		return "inq_" + scrambled(fmt.Sprint("inq", n))
	}
	return fmt.Sprintf("inq_gen%09d", n)
}

// scrambled turns key into 24 base-62 characters that look random, as
// Persona's ids do, and are the same on every run.
func scrambled(key string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(key))
	out := make([]byte, 24)
	for i := range out {
		out[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(out)
}

// bodies returns every lifecycle event of inquiries 0..inquiries-1,
// inquiry by inquiry.
func (g *generator) bodies(inquiries int) [][]byte {
	out := make([][]byte, 0, inquiries*len(lifecycle))
	for n := range inquiries {
		for step := range lifecycle {
			out = append(out, g.body(n, step))
		}
	}
	return out
}
