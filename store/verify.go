package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/personad/personad/engine"
)

// ErrTampered is what Verify (and Head) return, wrapped, when the event
// log or a projection is not as personad wrote it.
var ErrTampered = errors.New("the event log does not verify")

// VerifyReport says what Verify checked and what it found.
type VerifyReport struct {
	Head      ChainHead // the last event's seq and stored link
	Events    int       // rows of the event log
	Inquiries int       // inquiries folded from their events

	// BrokenSeq is the first seq at which the chain does not hold (a
	// missing row, a row without a link, a link that does not follow from
	// the one before, or a link that differs from the anchored head), or
	// 0 when it holds; ChainProblem says how.
	BrokenSeq    int64
	ChainProblem string

	// Mismatches counts the inquiries whose stored projection is not the
	// fold of their events (or that have one and not the other);
	// MismatchedInquiry is the first of them by id, FoldProblem how it
	// differs.
	Mismatches        int
	MismatchedInquiry string
	FoldProblem       string
}

// OK reports whether the chain held and every projection was its fold.
func (r VerifyReport) OK() bool { return r.BrokenSeq == 0 && r.Mismatches == 0 }

// Verify checks the event log and the projections from one read snapshot,
// so it runs beside a serving daemon, on a DB from OpenReadOnly as well as
// from Open. It recomputes the hash chain over every event in seq order
// (see chainLink), and re-folds every inquiry's events with engine.Fold
// and p, as Rebuild does, comparing the result with the stored projection
// byte for byte. With anchor set, the event at anchor.Seq must exist and
// hold anchor.Chain: a head taken earlier (from Head or GET
// /v1/audit/head) and kept elsewhere, which shows a log rewritten from
// some event on, links and all, or cut short at its end, which the chain
// alone cannot.
//
// Errors: an error matching ErrTampered, naming the first broken seq and
// the first mismatched inquiry, when a check failed (the report then says
// the same in its fields); an error for an anchor at seq 0 that is not
// the zero link; ctx's error; engine.ErrUnavailable when the reads failed.
// The report holds what was checked until then in every case.
func (db *DB) Verify(ctx context.Context, p engine.Policy, anchor *ChainHead) (VerifyReport, error) {
	if anchor != nil && anchor.Seq == 0 && anchor.Chain != ([32]byte{}) {
		return VerifyReport{}, fmt.Errorf("store: verify: the anchored head %s is at seq 0 but is not the zero link of an empty log", anchor)
	}
	q, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return VerifyReport{}, unavailable("verify: begin", err)
	}
	defer q.Rollback()
	var rep VerifyReport
	if err := verifyChain(ctx, q, anchor, &rep); err != nil {
		return rep, err
	}
	if err := verifyProjections(q, p, &rep); err != nil {
		return rep, err
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if err := db.awaitDurable(ctx); err != nil { // what it checked must not vanish
		return rep, unavailable("verify", err)
	}
	if rep.OK() {
		return rep, nil
	}
	return rep, tamperedError(db.path, rep)
}

// tamperedError describes a failed verification in one message.
func tamperedError(path string, rep VerifyReport) error {
	var msg string
	if rep.BrokenSeq != 0 {
		msg = fmt.Sprintf("the hash chain breaks at event #%d: %s", rep.BrokenSeq, rep.ChainProblem)
	}
	if rep.Mismatches > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("inquiry %s: %s", rep.MismatchedInquiry, rep.FoldProblem)
		if rep.Mismatches > 1 {
			msg += fmt.Sprintf(" (and %d more inquiries)", rep.Mismatches-1)
		}
	}
	return fmt.Errorf("store: verify %s: %w: %s", path, ErrTampered, msg)
}

// verifyChain recomputes the chain from the genesis link and notes the
// first seq at which it does not hold, and whether the anchor does.
func verifyChain(ctx context.Context, q *sql.Tx, anchor *ChainHead, rep *VerifyReport) error {
	rows, err := q.QueryContext(ctx, `SELECT seq, event_id, sha256, received_at, chain, event_key FROM events ORDER BY seq`)
	if err != nil {
		return unavailable("verify: read events", err)
	}
	defer rows.Close()
	var (
		prev          [32]byte // the recomputed link of the row before
		want          = int64(1)
		anchorProblem string
		anchorSeen    = anchor == nil || anchor.Seq == 0
	)
	broken := func(seq int64, format string, args ...any) {
		if rep.BrokenSeq == 0 {
			rep.BrokenSeq, rep.ChainProblem = seq, fmt.Sprintf(format, args...)
		}
	}
	for rows.Next() {
		var (
			seq, receivedAt, key int64
			id, sum, link        sql.RawBytes
		)
		if err := rows.Scan(&seq, &id, &sum, &receivedAt, &link, &key); err != nil {
			return unavailable("verify: read events", err)
		}
		rep.Events++
		rep.Head = ChainHead{Seq: seq}
		copy(rep.Head.Chain[:], link)
		if anchor != nil && seq == anchor.Seq {
			anchorSeen = true
			if !bytes.Equal(link, anchor.Chain[:]) {
				anchorProblem = fmt.Sprintf("its link is %x, the anchored head says %s: the log was rewritten at or before it",
					[]byte(link), hex.EncodeToString(anchor.Chain[:]))
			}
		}
		switch {
		case rep.BrokenSeq != 0: // only the first break is reported
		case seq < want:
			broken(want, "the log starts at #%d, not #1", seq)
		case seq == want+1:
			broken(want, "it is missing (the log goes on at #%d)", seq)
		case seq > want:
			broken(want, "events #%d to #%d are missing (the log goes on at #%d)", want, seq-1, seq)
		case len(sum) != len(prev):
			broken(seq, "its body hash is %d bytes, not %d", len(sum), len(prev))
		case len(link) != len(prev):
			broken(seq, "it has no chain link")
		case key != eventKey(string(id)):
			broken(seq, "its event_key is not the hash of its event id, so a redelivery would not find it")
		default:
			prev = chainLink(prev, seq, string(id), [32]byte(sum), receivedAt)
			if !bytes.Equal(prev[:], link) {
				broken(seq, "its link does not follow from the link before it and its seq, event id, body hash and receipt time")
			}
		}
		want = seq + 1
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return unavailable("verify: read events", err)
	}
	if !anchorSeen {
		if anchor.Seq > rep.Head.Seq {
			anchorProblem = fmt.Sprintf("the log ends at #%d, before the anchored head: events were removed from its end", rep.Head.Seq)
		} else {
			anchorProblem = "the anchored head is missing from the log"
		}
	}
	if anchorProblem != "" && (rep.BrokenSeq == 0 || anchor.Seq < rep.BrokenSeq) {
		rep.BrokenSeq, rep.ChainProblem = anchor.Seq, anchorProblem
	}
	return nil
}

// verifyProjections folds every inquiry's stored events, in parallel as
// Rebuild does, and compares each fold with the stored projection.
func verifyProjections(q *sql.Tx, p engine.Policy, rep *VerifyReport) error {
	stored, err := storedDocs(q)
	if err != nil {
		return err
	}
	type mismatch struct{ id, problem string }
	var (
		bad    []mismatch
		folded = make(map[string]bool, len(stored))
		counts RebuildReport
	)
	if err := foldAll(q, p, false, &counts, func(d derived) {
		doc, ok := stored[d.inq.ID]
		problem := ""
		switch {
		case d.err != nil:
			problem = fmt.Sprintf("its event #%d no longer parses: %v", d.seq, d.err)
		case !ok:
			problem = "it has events but no stored projection"
		case !bytes.Equal(d.doc, doc):
			problem = "its stored projection differs from the fold of its events"
		}
		folded[d.inq.ID] = true
		if problem != "" {
			bad = append(bad, mismatch{d.inq.ID, problem})
		}
	}); err != nil {
		return err
	}
	rep.Inquiries = counts.Inquiries
	for id := range stored {
		if !folded[id] {
			bad = append(bad, mismatch{id, "it has a stored projection but no events"})
		}
	}
	_, drifted, err := lookupDrift(q)
	if err != nil {
		return err
	}
	named := make(map[string]bool, len(bad))
	for _, m := range bad {
		named[m.id] = true
	}
	for _, id := range drifted {
		if !named[id] {
			bad = append(bad, mismatch{id, "its lookup columns (reference_id, account_id, template_id, created_at) differ from its projection"})
		}
	}
	if len(bad) == 0 {
		return nil
	}
	first := slices.MinFunc(bad, func(a, b mismatch) int { return cmp.Compare(a.id, b.id) })
	rep.Mismatches, rep.MismatchedInquiry, rep.FoldProblem = len(bad), first.id, first.problem
	return nil
}
