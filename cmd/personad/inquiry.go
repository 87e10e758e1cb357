package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// inquiryCommand prints a projection (personad inquiry) or a history
// (personad events), reading the database directly and read-only, so it
// works while personad serve runs.
type inquiryCommand struct {
	stdout io.Writer
	events bool
	db, id string
}

func (c *inquiryCommand) ParseFlags(args []string) error {
	name := "inquiry"
	if c.events {
		name = "events"
	}
	fs := newFlagSet(name, name+" -db FILE ID", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return withHint(errors.New("want exactly one inquiry id"), "personad "+name+" -db personad.db inq_...")
	}
	c.id = fs.Arg(0)
	return nil
}

func (c *inquiryCommand) Run(ctx context.Context) error {
	db, err := openExistingReadOnly(c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	eng := engine.New(db, engine.Policy{})
	var v any
	if c.events {
		hist, err := eng.History(ctx, c.id)
		if err != nil {
			return err
		}
		v = map[string]any{"events": server.EventViews(hist)}
	} else if v, err = eng.Inquiry(ctx, c.id); err != nil {
		return err
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
