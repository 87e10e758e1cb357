package store_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// fixturePII is the personal data in the fixture history of fixtureInquiry.
var fixturePII = []string{
	"Jane", "Marie", "Doe", "123 Main St", "San Francisco", "94111", "1995-09-08",
	"jane@example.com", "+14155550123", "D1234567", "123-45-6789",
	"called support about her licence", "192.0.2.4", "37.7749", "-122.4194", "Mozilla/5.0",
}

// relatedHistory is the fixture inquiry's verification, session and
// watchlist report: events about other objects that belong to it.
func relatedHistory(tb testing.TB) [][]byte {
	return [][]byte{
		fixture(tb, "verification.passed.json"),
		fixture(tb, "inquiry-session.started.json"),
		fixture(tb, "report_watchlist.matched.json"),
	}
}

// TestRedactionForgets ingests the fixture history, with the events
// related to the inquiry, in several orders and then scans the raw bytes
// of the database file and its WAL, while the store is open and after it
// closed, for every PII string of the fixture.
func TestRedactionForgets(t *testing.T) {
	bodies, related := history(t), relatedHistory(t)
	redaction := bodies[len(bodies)-1]
	tests := []struct {
		name   string
		ingest func(t *testing.T, eng *engine.Engine)
	}{
		{"in order", func(t *testing.T, eng *engine.Engine) {
			for _, b := range slices.Concat(related, bodies) {
				ingest(t, eng, b)
			}
		}},
		{"related events, then the redaction as the inquiry's first event", func(t *testing.T, eng *engine.Engine) {
			for _, b := range slices.Concat(related, [][]byte{redaction}, bodies[:len(bodies)-1]) {
				ingest(t, eng, b)
			}
		}},
		{"redaction first", func(t *testing.T, eng *engine.Engine) {
			ingest(t, eng, redaction)
			for _, b := range slices.Concat(bodies[:len(bodies)-1], related) {
				ingest(t, eng, b)
			}
		}},
		{"all at once", func(t *testing.T, eng *engine.Engine) {
			var wg sync.WaitGroup
			for _, b := range slices.Concat(bodies, related) {
				wg.Go(func() { ingest(t, eng, b) })
			}
			wg.Wait()
		}},
	}
	for _, tt := range tests {
		for _, forget := range []time.Duration{0, 200 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/forget within %v", tt.name, forget), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "personad.db")
				db := openPath(t, path, store.Options{ForgetWithin: forget})
				eng := engine.New(db, engine.Policy{})
				// Unrelated traffic first, so the inquiry's pages are not the
				// only ones. The generated events share the fixture's person:
				// scrub them so that only the inquiry under test holds PII.
				g := newGenerator(t)
				for _, b := range g.bodies(30) {
					clean, err := engine.Scrub(b)
					if err != nil {
						t.Fatal(err)
					}
					ingest(t, eng, clean)
				}
				tt.ingest(t, eng)

				inq := mustInquiry(t, db, fixtureInquiry)
				if !inq.Redacted {
					t.Fatalf("inquiry not redacted: %+v", inq)
				}
				if forget > 0 {
					// The WAL may hold the old bodies for up to forget:
					// wait well past it before reporting them.
					scanForPIIWithin(t, path, forget+5*time.Second, "while open")
				} else {
					scanForPII(t, path, "while open, as acknowledged")
				}
				checkSHA256Kept(t, db, bodies)
				if recs, err := db.RelatedEvents(ctx, fixtureInquiry); err != nil || len(recs) != len(related) {
					t.Errorf("%d related events (%v), want %d", len(recs), err, len(related))
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				scanForPII(t, path, "after close")
			})
		}
	}
}

// scanForPII reads the database file and its WAL byte by byte.
func scanForPII(t *testing.T, path, when string) {
	t.Helper()
	for _, found := range findPII(t, path) {
		t.Errorf("%s: %s", when, found)
	}
}

// scanForPIIWithin waits up to within for the fixture's PII to leave the
// database file and its WAL, then reports where it is still found.
func scanForPIIWithin(t *testing.T, path string, within time.Duration, when string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(findPII(t, path)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	scanForPII(t, path, when)
}

// findPII lists where the fixture's PII strings occur in the database file,
// its WAL and its shared-memory index.
func findPII(t *testing.T, path string) []string {
	t.Helper()
	return filesHolding(t, path, fixturePII)
}

func checkSHA256Kept(t *testing.T, db engine.Reader, bodies [][]byte) {
	t.Helper()
	var want [][32]byte
	for _, b := range bodies {
		want = append(want, sha256.Sum256(b))
	}
	recs, err := db.Events(ctx, fixtureInquiry)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(bodies) {
		t.Fatalf("stored %d events, want %d", len(recs), len(bodies))
	}
	for _, r := range recs {
		if !slices.Contains(want, r.SHA256) {
			t.Errorf("%s: stored SHA-256 is not that of a body as received", r.EventID)
		}
		if r.SHA256 == sha256.Sum256(r.Body) && bytes.Contains(r.Body, []byte(`"name-first":"`)) {
			t.Errorf("%s: body kept as received", r.EventID)
		}
	}
}

// TestRebuildForgetsAMissedRedaction gives the store a log that holds the
// fixture inquiry's redaction but a projection that missed it, with the
// bodies as received, as an engine that did not know the redaction would
// have left them. Rebuild must redact the projection and scrub every body
// of the inquiry and of its related events, down to the bytes of the file.
func TestRebuildForgetsAMissedRedaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	received := map[string][]byte{} // event id → body as received
	for _, b := range slices.Concat(relatedHistory(t), history(t)) {
		ingest(t, eng, b)
		ev, err := engine.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		received[ev.ID] = b
	}
	unredacted := *mustInquiry(t, db, fixtureInquiry)
	unredacted.Redacted = false
	if err := db.Update(ctx, func(tx engine.Tx) error {
		if err := tx.SaveInquiry(&unredacted); err != nil {
			return err
		}
		return tx.ReplaceBodies([]string{fixtureInquiry}, func(body []byte) ([]byte, error) {
			ev, err := engine.Parse(body)
			if err != nil {
				return nil, err
			}
			return received[ev.ID], nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(findPII(t, path)) == 0 {
		t.Fatal("the bodies as received were not restored: this case tests nothing")
	}

	rep, err := db.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Changed, []string{fixtureInquiry}) || rep.Changes != 1 {
		t.Errorf("report = %+v, want the fixture inquiry changed, with one change", rep)
	}
	if !mustInquiry(t, db, fixtureInquiry).Redacted {
		t.Error("Rebuild did not redact the projection")
	}
	scanForPII(t, path, "after Rebuild")
	checkSHA256Kept(t, db, history(t))
}
