package store_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// recomputeChain reads the log of the database at path with the driver
// directly and recomputes every link as the issue defines it, without the
// store's code: SHA-256(previous link || seq || event id || sha256 ||
// received_at), seq and received_at as 8-byte big-endian integers. It
// fails tb unless every stored link is the recomputed one, and returns
// the head.
func recomputeChain(tb testing.TB, path string) store.ChainHead {
	tb.Helper()
	rows, err := rawDB(tb, path, "mode=ro").Query(`SELECT seq, event_id, sha256, received_at, chain FROM events ORDER BY seq`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var head store.ChainHead
	for rows.Next() {
		var (
			seq, received int64
			id            string
			sum, link     []byte
		)
		if err := rows.Scan(&seq, &id, &sum, &received, &link); err != nil {
			tb.Fatal(err)
		}
		if seq != head.Seq+1 {
			tb.Fatalf("seq %d follows %d", seq, head.Seq)
		}
		h := sha256.New()
		h.Write(head.Chain[:])
		binary.Write(h, binary.BigEndian, seq)
		h.Write([]byte(id))
		h.Write(sum)
		binary.Write(h, binary.BigEndian, received)
		head.Seq = seq
		h.Sum(head.Chain[:0])
		if !bytes.Equal(link, head.Chain[:]) {
			tb.Fatalf("event #%d: stored link %x, recomputed %x", seq, link, head.Chain)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return head
}

// mustVerify runs Verify and fails tb unless the log and the projections
// hold.
func mustVerify(tb testing.TB, db *store.DB, p engine.Policy) store.VerifyReport {
	tb.Helper()
	rep, err := db.Verify(ctx, p, nil)
	if err != nil {
		tb.Fatalf("Verify: %v (report %+v)", err, rep)
	}
	return rep
}

func TestParseChainHead(t *testing.T) {
	link := sha256.Sum256([]byte("x"))
	hexLink := fmt.Sprintf("%x", link)
	tests := []struct {
		in   string
		want store.ChainHead
		ok   bool
	}{
		{"42:" + hexLink, store.ChainHead{Seq: 42, Chain: link}, true},
		{" 42:" + strings.ToUpper(hexLink) + "\n", store.ChainHead{Seq: 42, Chain: link}, true},
		{"0:" + strings.Repeat("0", 64), store.ChainHead{}, true},
		{"42", store.ChainHead{}, false},
		{"-1:" + hexLink, store.ChainHead{}, false},
		{"x:" + hexLink, store.ChainHead{}, false},
		{"42:" + hexLink[:62], store.ChainHead{}, false},
		{"42:" + hexLink + "00", store.ChainHead{}, false},
		{"42:" + hexLink[:63] + "g", store.ChainHead{}, false},
	}
	for _, tt := range tests {
		got, err := store.ParseChainHead(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseChainHead(%q) = %v, %v; want %v, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok {
			if back, err := store.ParseChainHead(got.String()); err != nil || back != got {
				t.Errorf("ParseChainHead(%q.String()) = %v, %v; want it back", got, back, err)
			}
		}
	}
	if got, want := (store.ChainHead{Seq: 42, Chain: link}).String(), "42:"+hexLink; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestChainLinks ingests into a new database, closes and reopens it (the
// writer reads its head back) and ingests more, and wants every stored
// link to be the encoding, Head and Verify to agree on the head,
// and the links to be immutable.
func TestChainLinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db := openPath(t, path, store.Options{})
	if h, err := db.Head(ctx); err != nil || h != (store.ChainHead{}) {
		t.Errorf("Head of an empty log = %v, %v; want 0 and the zero link", h, err)
	}
	g := newGenerator(t)
	bodies := g.bodies(20)
	for _, b := range bodies[:40] {
		ingest(t, engine.New(db, engine.Policy{}), b)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path, store.Options{})
	eng := engine.New(db, engine.Policy{})
	for _, b := range bodies[40:] {
		ingest(t, eng, b)
	}
	ingest(t, eng, fixture(t, "verification.passed.json"))

	want := recomputeChain(t, path)
	if want.Seq != int64(len(bodies)+1) {
		t.Errorf("head seq %d, want %d events", want.Seq, len(bodies)+1)
	}
	if h, err := db.Head(ctx); err != nil || h != want {
		t.Errorf("Head = %v, %v; want %v", h, err, want)
	}
	rep := mustVerify(t, db, engine.Policy{})
	if rep.Head != want || rep.Events != len(bodies)+1 || rep.Inquiries != 20 {
		t.Errorf("Verify report %+v, want head %v, %d events, 20 inquiries", rep, want, len(bodies)+1)
	}
	if _, err := rawDB(t, path, "").Exec(`UPDATE events SET chain = zeroblob(32) WHERE seq = 3`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("rewriting a link: %v, want the append-only trigger's refusal", err)
	}
}

// TestChainSurvivesFailedUpdates mixes deliveries with updates that append
// an event and then fail or panic, so that batches roll back savepoints
// and run twice, and wants a chain with no gap that verifies.
func TestChainSurvivesFailedUpdates(t *testing.T) {
	db := openTemp(t, store.Options{})
	eng := engine.New(db, engine.Policy{})
	boom := errors.New("boom")
	// Alone in its batch, a failing update rolls the transaction back.
	if err := db.Update(ctx, func(tx engine.Tx) error {
		if err := tx.AppendEvent(record("evt_alone", "inq_failed")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v, want boom", err)
	}
	bodies := newGenerator(t).bodies(50)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range bodies {
		wg.Go(func() {
			<-start
			ingest(t, eng, b)
		})
		wg.Go(func() {
			<-start
			err := db.Update(ctx, func(tx engine.Tx) error {
				if err := tx.AppendEvent(record(fmt.Sprintf("evt_failed_%03d", i), "inq_failed")); err != nil {
					return err
				}
				if i%5 == 0 {
					panic("bad fn")
				}
				return boom
			})
			if err == nil {
				t.Errorf("update %d succeeded, want it to fail", i)
			}
		})
	}
	close(start)
	wg.Wait()
	if batches, updates := store.Batches(db); batches >= updates {
		t.Errorf("%d updates ran in %d batches: nothing was grouped, so no savepoint was rolled back", updates, batches)
	}
	rep := mustVerify(t, db, engine.Policy{})
	if rep.Events != len(bodies) || rep.Head.Seq != int64(len(bodies)) {
		t.Errorf("report %+v, want %d events ending at seq %d", rep, len(bodies), len(bodies))
	}
	if got := recomputeChain(t, db.Path()); got != rep.Head {
		t.Errorf("recomputed head %v, Verify's %v", got, rep.Head)
	}
}

// TestChainAcrossWriters appends through two DBs open on one file, as two
// processes could if one ignored the lock file, and wants each writer to
// extend the other's chain.
func TestChainAcrossWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	a, b := openPath(t, path, store.Options{}), openWithoutLock(t, path)
	engs := []*engine.Engine{engine.New(a, engine.Policy{}), engine.New(b, engine.Policy{})}
	for i, body := range newGenerator(t).bodies(5) {
		ingest(t, engs[i%3%2], body)
	}
	rep := mustVerify(t, a, engine.Policy{})
	if rep.Events != 20 {
		t.Errorf("%d events, want 20", rep.Events)
	}
	recomputeChain(t, path)
}

// TestVerifyDetectsTampering changes a verified database behind the
// store's back, as someone with the file could, and wants Verify to fail
// with ErrTampered, naming the first broken seq or mismatched inquiry.
func TestVerifyDetectsTampering(t *testing.T) {
	g := newGenerator(t)
	base := filepath.Join(t.TempDir(), "base.db")
	db := openPath(t, base, store.Options{})
	eng := engine.New(db, engine.Policy{})
	for _, b := range g.bodies(3) { // seq 1..12: inquiry n's events are 4n+1..4n+4
		ingest(t, eng, b)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	head := recomputeChain(t, base)
	at := func(seq int64) *store.ChainHead {
		h := head
		h.Seq = seq
		return &h
	}
	tests := []struct {
		name       string
		tamper     func(t *testing.T, raw *sql.DB) // run with the triggers dropped
		anchor     *store.ChainHead
		brokenSeq  int64
		mismatched string
		words      []string // the error must name these
	}{
		{name: "intact"},
		{name: "intact, anchored at the head", anchor: &head},
		{name: "anchored at an older head", anchor: func() *store.ChainHead {
			h := recomputeChainTo(t, base, 5)
			return &h
		}()},
		{name: "flipped byte of a body hash", tamper: flipHashByte(7), brokenSeq: 7, words: []string{"#7"}},
		{name: "event_key not the id's hash", tamper: execSQL(`UPDATE events SET event_key = event_key + 1 WHERE seq = 4`),
			brokenSeq: 4, words: []string{"event_key"}},
		{name: "changed receipt time", tamper: execSQL(`UPDATE events SET received_at = received_at + 1 WHERE seq = 2`), brokenSeq: 2},
		{name: "deleted middle row", tamper: execSQL(`DELETE FROM events WHERE seq = 6`), brokenSeq: 6, mismatched: g.inquiryID(1),
			words: []string{"#6", "missing", g.inquiryID(1)}},
		{name: "deleted first rows", tamper: execSQL(`DELETE FROM events WHERE seq <= 2`), brokenSeq: 1, mismatched: g.inquiryID(0),
			words: []string{"#1 to #2"}},
		{name: "reordered rows", tamper: execSQL(`UPDATE events SET seq = -1 WHERE seq = 3;
			UPDATE events SET seq = 3 WHERE seq = 9; UPDATE events SET seq = 9 WHERE seq = -1`), brokenSeq: 3, words: []string{"#3"}},
		{name: "hand-made row", tamper: execSQL(`INSERT INTO events (seq, event_key, event_id, name, object_type, object_id, created_at, received_at,
			attempts_made, deliveries, outcome, sha256, body) SELECT 13, 13, 'evt_forged', 'account.created', 'account', 'act_forged',
			created_at, received_at, 1, 1, 'unknown', sha256, body FROM events WHERE seq = 12`), brokenSeq: 13, words: []string{"no chain link"}},
		{name: "rewritten link", tamper: execSQL(`UPDATE events SET chain = zeroblob(32) WHERE seq = 12`), brokenSeq: 12},
		{name: "cut short, anchored", tamper: execSQL(`DELETE FROM events WHERE seq = 12`), anchor: &head, brokenSeq: 12,
			mismatched: g.inquiryID(2), words: []string{"ends at #11"}},
		{name: "wrong anchored link", anchor: &store.ChainHead{Seq: 4}, brokenSeq: 4, words: []string{"anchored head"}},
		{name: "anchor past the end", anchor: at(13), brokenSeq: 13, words: []string{"ends at #12"}},
		{name: "edited projection", tamper: execSQL(fmt.Sprintf(`UPDATE inquiries SET doc = json_set(doc, '$.status', 'declined') WHERE id = '%s'`, g.inquiryID(1))),
			mismatched: g.inquiryID(1), words: []string{g.inquiryID(1), "differs"}},
		{name: "edited lookup column", tamper: execSQL(fmt.Sprintf(`UPDATE inquiries SET reference_id = 'someone-else' WHERE id = '%s'`, g.inquiryID(1))),
			mismatched: g.inquiryID(1), words: []string{g.inquiryID(1), "lookup columns"}},
		{name: "moved created_at column", tamper: execSQL(fmt.Sprintf(`UPDATE inquiries SET created_at = created_at + 1 WHERE id = '%s'`, g.inquiryID(0))),
			mismatched: g.inquiryID(0), words: []string{g.inquiryID(0), "lookup columns"}},
		{name: "deleted projection", tamper: execSQL(fmt.Sprintf(`DELETE FROM inquiries WHERE id = '%s'`, g.inquiryID(2))),
			mismatched: g.inquiryID(2), words: []string{"no stored projection"}},
		{name: "projection without events", tamper: execSQL(fmt.Sprintf(`INSERT INTO inquiries (id, status, redacted, updated_at, anomalies, doc)
			SELECT 'inq_aaa_forged', status, redacted, updated_at, anomalies, doc FROM inquiries WHERE id = '%s'`, g.inquiryID(0))),
			mismatched: "inq_aaa_forged", words: []string{"no events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := copyDB(t, base)
			if tt.tamper != nil {
				raw := rawDB(t, path, "")
				mustExec(t, raw, `DROP TRIGGER events_append_only; DROP TRIGGER events_immutable; DROP TRIGGER events_chain_immutable`)
				tt.tamper(t, raw)
				if err := raw.Close(); err != nil {
					t.Fatal(err)
				}
			}
			ro, err := store.OpenReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			rep, err := ro.Verify(ctx, engine.Policy{}, tt.anchor)
			t.Log(err)
			if tt.brokenSeq == 0 && tt.mismatched == "" {
				if err != nil || !rep.OK() {
					t.Fatalf("Verify = %+v, %v; want it to hold", rep, err)
				}
				if rep.Head != head || rep.Events != 12 || rep.Inquiries != 3 {
					t.Errorf("report %+v, want head %v, 12 events, 3 inquiries", rep, head)
				}
				return
			}
			if !errors.Is(err, store.ErrTampered) {
				t.Fatalf("Verify: err = %v, want ErrTampered", err)
			}
			if rep.BrokenSeq != tt.brokenSeq || rep.MismatchedInquiry != tt.mismatched {
				t.Errorf("broken seq %d (%s), mismatched %q (%s); want %d, %q",
					rep.BrokenSeq, rep.ChainProblem, rep.MismatchedInquiry, rep.FoldProblem, tt.brokenSeq, tt.mismatched)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
		})
	}
}

func execSQL(query string) func(*testing.T, *sql.DB) {
	return func(t *testing.T, raw *sql.DB) { mustExec(t, raw, query) }
}

// flipHashByte flips one bit of the stored body hash of the event at seq.
func flipHashByte(seq int64) func(*testing.T, *sql.DB) {
	return func(t *testing.T, raw *sql.DB) {
		var sum []byte
		if err := raw.QueryRow(`SELECT sha256 FROM events WHERE seq = ?`, seq).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		sum[5] ^= 1
		if _, err := raw.Exec(`UPDATE events SET sha256 = ? WHERE seq = ?`, sum, seq); err != nil {
			t.Fatal(err)
		}
	}
}

// recomputeChainTo returns the head at seq of the chain stored at path.
func recomputeChainTo(tb testing.TB, path string, seq int64) store.ChainHead {
	tb.Helper()
	var h store.ChainHead
	var link []byte
	if err := rawDB(tb, path, "mode=ro").QueryRow(`SELECT seq, chain FROM events WHERE seq = ?`, seq).Scan(&h.Seq, &link); err != nil {
		tb.Fatal(err)
	}
	copy(h.Chain[:], link)
	return h
}

// copyDB copies a closed (checkpointed) database file into a new
// temporary directory.
func copyDB(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	dst := filepath.Join(tb.TempDir(), "personad.db")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// TestMigrateChainsEvents opens a version 3 database, written before the
// chain, and wants the migration to link every row in seq order, as an
// independent recomputation does, and Verify to hold.
func TestMigrateChainsEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	n := writeV3(t, path)
	db := openPath(t, path, store.Options{})
	head := recomputeChain(t, path)
	if head.Seq != int64(n) {
		t.Errorf("head seq %d, want %d", head.Seq, n)
	}
	rep := mustVerify(t, db, engine.Policy{})
	if rep.Head != head || rep.Events != n {
		t.Errorf("report %+v, want head %v and %d events", rep, head, n)
	}
	// The writer extends the migrated chain.
	ingest(t, engine.New(db, engine.Policy{}), newGenerator(t).body(99, 0))
	mustVerify(t, db, engine.Policy{})
	if got := recomputeChain(t, path); got.Seq != int64(n+1) {
		t.Errorf("head seq after an ingest %d, want %d", got.Seq, n+1)
	}
}

// writeV3 writes a version 3 database, as the store did before the chain:
// the lifecycles of a few generated inquiries, a verification of the
// fixture inquiry and the fixture inquiry's start, each received at its
// own millisecond, and their projections. It returns how many events.
func writeV3(t *testing.T, path string) int {
	t.Helper()
	bodies := append(newGenerator(t).bodies(4), fixture(t, "verification.passed.json"), fixture(t, "inquiry.started.json"))
	events := make([]v3Event, len(bodies))
	for i, b := range bodies {
		events[i] = asReceived(b)
	}
	writeV3Log(t, path, events)
	return len(bodies)
}
