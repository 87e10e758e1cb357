package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/personad/personad/store"
)

// verifyCommand checks a database read-only, so it runs while personad
// serve does: the hash chain over the event log, every projection against
// the fold of its events and, with -head, a head anchored earlier.
type verifyCommand struct {
	stdout     io.Writer
	db         string
	head       *store.ChainHead
	autoDecide bool
	policySet  bool // -auto-decide was given
}

func (c *verifyCommand) ParseFlags(args []string) error {
	fs := newFlagSet("verify", "verify -db FILE [-head SEQ:HEX] [-auto-decide]", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	head := fs.String("head", "", "a head anchored earlier, SEQ:HEX (as verify prints it, or GET /v1/audit/head's seq and chain joined by a colon), that the log must still hold")
	fs.BoolVar(&c.autoDecide, "auto-decide", false, "fold with this policy (default: the policy the file records)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.policySet = flagGiven(fs, "auto-decide")
	if fs.NArg() > 0 {
		return withHint(fmt.Errorf("unexpected argument %q", fs.Arg(0)), "personad verify -db personad.db [-head SEQ:HEX]")
	}
	if *head != "" {
		h, err := store.ParseChainHead(*head)
		if err != nil {
			return withHint(fmt.Errorf("-head: %w", err), "-head 1234:<64 hex digits>, as personad verify printed it")
		}
		c.head = &h
	}
	return nil
}

func (c *verifyCommand) Run(ctx context.Context) error {
	db, err := openExistingReadOnly(c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	p, _, _, err := policyToUse(ctx, db, c.policySet, c.autoDecide)
	if err != nil {
		return err
	}
	rep, err := db.Verify(ctx, p, c.head)
	if errors.Is(err, store.ErrTampered) {
		hint := "restore the database from a backup; compare it with this one to see what changed"
		switch {
		case c.head != nil && rep.BrokenSeq == c.head.Seq:
			hint = "check that -head is the head you anchored; if it is, the log was rewritten: " + hint
		case rep.BrokenSeq == 0:
			hint = "if personad serve folds with -auto-decide, verify with -auto-decide too; otherwise the log still holds, " +
				"and personad rebuild re-derives the projections from it"
		}
		return withHint(err, hint)
	}
	if err != nil {
		return err
	}
	line := fmt.Sprintf("ok: %d events, %d inquiries; head %s", rep.Events, rep.Inquiries, rep.Head)
	if c.head != nil {
		line += fmt.Sprintf("; anchored head %s holds", c.head)
	}
	_, err = fmt.Fprintln(c.stdout, line)
	return err
}
