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
}

func (c *rebuildCommand) ParseFlags(args []string) error {
	fs := newFlagSet("rebuild", "rebuild -db FILE [-auto-decide]", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	fs.BoolVar(&c.autoDecide, "auto-decide", false, "fold with the auto-decide policy (use what serve uses)")
	return fs.Parse(args)
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
	rep, err := db.Rebuild(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "rebuilt %d inquiries from %d events in %v: %d projections changed, %d changes appended to the feed\n",
		rep.Inquiries, rep.Events, rep.Duration.Round(1e6), len(rep.Changed), rep.Changes)
	return err
}
