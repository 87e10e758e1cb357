package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/personad/personad/engine"
)

// AddLinks implements engine.Tx. An inquiry's every event repeats its
// links: those the writer knows are stored cost nothing. The others are
// kept in the transaction and inserted by flushLinks, a few per statement,
// when the batch commits: one statement per batch rather than one per
// delivery. Forget sees them before that.
func (t *tx) AddLinks(links []engine.Link) ([]engine.Link, error) {
	var unknown []engine.Link
	for _, l := range links {
		if t.cache.linkKnown(l) {
			continue
		}
		unknown = append(unknown, l)
		t.cache.linkStored(l)
		t.pendingLinks = append(t.pendingLinks, l)
	}
	return unknown, nil
}

// maxLinksPerInsert is how many links one INSERT statement holds.
const maxLinksPerInsert = 16

// flushLinks inserts the links AddLinks kept.
func (t *tx) flushLinks() error {
	args := make([]any, 0, 2*min(len(t.pendingLinks), maxLinksPerInsert))
	for i, l := range t.pendingLinks {
		args = append(args, l.Object, l.Owner)
		if len(args) == 2*maxLinksPerInsert || i == len(t.pendingLinks)-1 {
			if _, err := t.stmt(sAddLink + stmtID(len(args)/2-1)).Exec(args...); err != nil {
				return unavailable("add link", err)
			}
			args = args[:0]
		}
	}
	t.pendingLinks = t.pendingLinks[:0]
	return nil
}

// Forgetting implements engine.Tx. The filter answers most calls; only a
// possible hit reads the table.
func (t *tx) Forgetting(id string) (engine.Forget, error) {
	f, err := t.forgottenFilter()
	if err != nil {
		return engine.ForgetNone, err
	}
	if !f.mayContain(id) {
		return engine.ForgetNone, nil
	}
	var mode int
	err = t.stmt(sForgetting).QueryRow(id).Scan(&mode)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return engine.ForgetNone, nil
	case err != nil:
		return engine.ForgetNone, unavailable("read forgotten", err)
	}
	return engine.Forget(mode), nil
}

// forgottenFilter returns the writer's filter of forgotten ids, loading it
// from the table when it has none or has outgrown it.
func (t *tx) forgottenFilter() (*idFilter, error) {
	if f := t.cache.forgotten; f != nil && !f.full() {
		return f, nil
	}
	var n int
	if err := t.sql.QueryRow(`SELECT count(*) FROM forgotten`).Scan(&n); err != nil {
		return nil, unavailable("count forgotten", err)
	}
	f := newIDFilter(2 * n)
	rows, err := t.sql.Query(`SELECT id FROM forgotten`)
	if err != nil {
		return nil, unavailable("read forgotten", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, unavailable("read forgotten", err)
		}
		f.add(id)
	}
	if err := closeRows(rows, "read forgotten"); err != nil {
		return nil, err
	}
	t.cache.forgotten = f
	return f, nil
}

// Forget implements engine.Tx. It walks the links from id, those stored
// and those the transaction still keeps, breadth first; every object is
// visited once, so cycles end.
func (t *tx) Forget(id string, mode engine.Forget) ([]engine.Forgotten, error) {
	filter, err := t.forgottenFilter()
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	var rose []engine.Forgotten
	seen := map[string]bool{id: true}
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		x := queue[0]
		var old int
		switch err := t.stmt(sForgetting).QueryRow(x).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, unavailable("read forgotten", err)
		}
		if engine.Forget(old) < mode {
			if _, err := t.stmt(sForget).Exec(x, int(mode), now); err != nil {
				return nil, unavailable("forget", err)
			}
			filter.add(x)
			rose = append(rose, engine.Forgotten{ID: x, Mode: mode})
		}
		parts, err := t.linked(x)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return rose, nil
}

// linked returns the objects that belong to owner: linked to it, stored
// or pending, and listed in its events' parts.
func (t *tx) linked(owner string) ([]string, error) {
	rows, err := t.stmt(sLinked).Query(owner)
	if err != nil {
		return nil, unavailable("read links", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, unavailable("read links", err)
		}
		ids = append(ids, id)
	}
	if err := closeRows(rows, "read links"); err != nil {
		return nil, err
	}
	if rows, err = t.stmt(sParts).Query(owner); err != nil {
		return nil, unavailable("read parts", err)
	}
	for rows.Next() {
		var parts string
		if err := rows.Scan(&parts); err != nil {
			rows.Close()
			return nil, unavailable("read parts", err)
		}
		ids = append(ids, strings.Fields(parts)...)
	}
	if err := closeRows(rows, "read parts"); err != nil {
		return nil, err
	}
	for _, l := range t.pendingLinks {
		if l.Owner == owner {
			ids = append(ids, l.Object)
		}
	}
	return ids, nil
}

// ReplaceBodies implements engine.Tx, for events and conflicts alike. The
// old bytes are zeroed in the database pages (secure_delete) and, once
// the batch commits, the writer checkpoints and truncates the WAL.
func (t *tx) ReplaceBodies(ids []string, rewrite func([]byte) ([]byte, error)) error {
	for _, id := range ids {
		t.cache.dropHistory(id) // an inquiry's log is its events'
		if err := t.rewrite(sObjectBodies, sSetBody, "event", rewrite, id); err != nil {
			return err
		}
		if t.noConflicts {
			continue
		}
		if err := t.rewrite(sConflictBodies, sSetConflictBody, "conflict", rewrite, id); err != nil {
			return err
		}
	}
	return nil
}

// ReplaceDeadLetters implements engine.Tx, in one pass over the dead
// letters whatever the number of ids.
func (t *tx) ReplaceDeadLetters(ids []string, rewrite func([]byte) ([]byte, error)) error {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return t.rewrite(sDeadLetters, sSetDeadLetterBody, "dead letter", func(body []byte) ([]byte, error) {
		for _, w := range engine.IDWords(body) {
			if set[w] {
				return rewrite(body)
			}
		}
		return body, nil
	})
}

// rewrite replaces, with rewrite, the body of every row that query (of
// seq and body) returns for args, through update (of body and seq).
func (t *tx) rewrite(query, update stmtID, what string, rewrite func([]byte) ([]byte, error), args ...any) error {
	type changed struct {
		seq  int64
		body []byte
	}
	rows, err := t.stmt(query).Query(args...)
	if err != nil {
		return unavailable("read bodies", err)
	}
	var todo []changed // only the bodies that change are held
	for rows.Next() {
		var seq int64
		var stored []byte
		if err := rows.Scan(&seq, &stored); err != nil {
			rows.Close()
			return unavailable("read bodies", err)
		}
		body, err := t.decodeBody(stored)
		if err != nil {
			rows.Close()
			return fmt.Errorf("%w (%s #%d)", err, what, seq)
		}
		out, err := rewrite(body)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: rewrite body of %s #%d: %w", what, seq, err)
		}
		if !bytes.Equal(out, body) {
			todo = append(todo, changed{seq, out})
		}
	}
	if err := closeRows(rows, "read bodies"); err != nil {
		return err
	}
	for _, c := range todo {
		if _, err := t.stmt(update).Exec(t.encodeBody(c.body), c.seq); err != nil {
			return unavailable("replace body", err)
		}
		t.scrubbed = true
	}
	return nil
}

func closeRows(rows *sql.Rows, op string) error {
	if err := rows.Close(); err != nil {
		return unavailable(op, err)
	}
	if err := rows.Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// rescrubForgotten scrubs again the stored bodies of every forgotten
// object, and the dead letters naming them. Bodies scrubbed already are
// left as they are (scrubbing is idempotent).
func rescrubForgotten(t *tx) error {
	rows, err := t.sql.Query(`SELECT id, mode FROM forgotten`)
	if err != nil {
		return unavailable("read forgotten", err)
	}
	var all []engine.Forgotten
	for rows.Next() {
		var f engine.Forgotten
		if err := rows.Scan(&f.ID, &f.Mode); err != nil {
			rows.Close()
			return unavailable("read forgotten", err)
		}
		all = append(all, f)
	}
	if err := closeRows(rows, "read forgotten"); err != nil {
		return err
	}
	return engine.ForgetStored(t, all)
}

// linkExisting is the Go step of schema version 4: it learns the links of
// every event stored before it, and forgets what the engine would have
// forgotten: what belongs to the inquiries redacted already and to the
// redactions stored (account.redacted and the like were stored and ignored
// before version 4). Bodies are rewritten, and the projections of the
// inquiries whose bodies changed folded again with p, in the same
// transaction.
func linkExisting(ctx context.Context, sqlTx *sql.Tx, p engine.Policy) error {
	t := &tx{sql: sqlTx, cache: newProjections(), noConflicts: true, noLookupColumns: true, noSource: true, rawBodies: true}
	type redaction struct {
		id   string
		mode engine.Forget
	}
	var redactions []redaction
	// Links go in a page of events at a time, so that a large log needs
	// no more memory than a page: an inquiry's every event repeats its
	// links, and INSERT OR IGNORE keeps one of each.
	chunk := map[engine.Link]bool{}
	for after := int64(0); ; {
		rows, err := sqlTx.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT 1000`, after)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			var body []byte
			if err := rows.Scan(&after, &body); err != nil {
				rows.Close()
				return err
			}
			n++
			ev, err := engine.Parse(body)
			if err != nil {
				continue // every stored body parsed once; one that no longer does links nothing
			}
			for _, l := range ev.Links() {
				chunk[l] = true
			}
			if ev.SubjectRedacted && ev.ObjectID != "" {
				redactions = append(redactions, redaction{ev.ObjectID, engine.RedactionMode(ev)})
			}
		}
		if err := closeRows(rows, "read events"); err != nil {
			return err
		}
		for l := range chunk {
			t.pendingLinks = append(t.pendingLinks, l)
		}
		clear(chunk)
		if err := t.flushLinks(); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	redacted, err := redactedInquiries(ctx, sqlTx)
	if err != nil {
		return err
	}
	for id := range redacted {
		redactions = append(redactions, redaction{id, engine.ForgetKeepReference})
	}
	var rose []engine.Forgotten
	for _, r := range redactions {
		f, err := t.Forget(r.id, r.mode)
		if err != nil {
			return err
		}
		rose = append(rose, f...)
	}
	if err := engine.ForgetStored(t, rose); err != nil {
		return err
	}
	for _, f := range rose {
		c, err := engine.Refold(t, f.ID, p)
		if err != nil {
			return err
		}
		if c != nil {
			c.EventID, c.At = "", time.Now()
			if err := t.AppendChange(c); err != nil {
				return err
			}
		}
	}
	return nil
}
