package main

import (
	"context"
	"fmt"
	"io"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

type rebuildCommand struct {
	stdout     io.Writer
	db         string
	autoDecide bool
	policySet  bool // -auto-decide was given
}

func (c *rebuildCommand) ParseFlags(args []string) error {
	fs := newFlagSet("rebuild", "rebuild -db FILE [-auto-decide]", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	fs.BoolVar(&c.autoDecide, "auto-decide", false, "fold with this policy and record it in the file (default: the policy the file records)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.policySet = flagGiven(fs, "auto-decide")
	return nil
}

func (c *rebuildCommand) Run(ctx context.Context) error {
	if err := existingDB(c.db); err != nil {
		return err
	}
	db, err := store.Open(c.db, store.Options{Policy: engine.Policy{AutoDecide: c.autoDecide}})
	if err != nil {
		return err
	}
	defer db.Close()
	p, stored, recorded, err := policyToUse(ctx, db, c.policySet, c.autoDecide)
	if err != nil {
		return err
	}
	rep, err := db.RebuildWith(ctx, p)
	if err != nil {
		return err
	}
	if !recorded || p != stored {
		if err := db.RecordPolicy(ctx, p); err != nil {
			return err
		}
	}
	if recorded && p != stored {
		fmt.Fprintf(c.stdout, "policy changed: -auto-decide=%v, was %v\n", p.AutoDecide, stored.AutoDecide)
	}
	_, err = fmt.Fprintf(c.stdout, "rebuilt %d inquiries from %d events in %v: %d projections changed, %d changes appended to the feed\n",
		rep.Inquiries, rep.Events, rep.Duration.Round(1e6), len(rep.Changed), rep.Changes)
	return err
}
