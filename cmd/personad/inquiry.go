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
// (personad events), or, with -reference-id, -account-id or -template-id,
// the inquiries of a user, account or template, reading the database
// directly and read-only, so it works while personad serve runs.
type inquiryCommand struct {
	stdout io.Writer
	events bool
	db, id string
	// by selects a listing instead of one inquiry; limit caps it (0: all).
	by    engine.Query
	limit int
}

func (c *inquiryCommand) ParseFlags(args []string) error {
	name, synopsis := "inquiry", "inquiry -db FILE ID\n       personad inquiry -db FILE -reference-id X | -account-id X | -template-id X [-limit N]"
	if c.events {
		name, synopsis = "events", "events -db FILE ID"
	}
	fs := newFlagSet(name, synopsis, c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	if !c.events {
		fs.StringVar(&c.by.ReferenceID, "reference-id", "", "list the inquiries of this user (Persona's reference-id), newest created first")
		fs.StringVar(&c.by.AccountID, "account-id", "", "list the inquiries of this Persona account, newest created first")
		fs.StringVar(&c.by.TemplateID, "template-id", "", "list the inquiries of this template, newest created first")
		fs.IntVar(&c.limit, "limit", 0, "list at most the newest N (0: all)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	listing, empty := false, false
	for name, v := range map[string]string{"reference-id": c.by.ReferenceID, "account-id": c.by.AccountID, "template-id": c.by.TemplateID} {
		if flagGiven(fs, name) {
			listing, empty = true, empty || v == ""
		}
	}
	switch {
	case listing && fs.NArg() != 0:
		return withHint(errors.New("give an inquiry id or -reference-id, -account-id, -template-id, not both"),
			"personad inquiry -db personad.db -reference-id user-1234")
	case empty:
		// An empty value would list every user's inquiries.
		return withHint(errors.New("-reference-id, -account-id and -template-id must not be empty"),
			"personad inquiry -db personad.db -reference-id user-1234")
	case listing && c.limit < 0:
		return withHint(errors.New("-limit must not be negative"), "personad inquiry -db personad.db -reference-id user-1234 -limit 1")
	case flagGiven(fs, "limit") && !listing:
		return withHint(errors.New("-limit goes with -reference-id, -account-id or -template-id"),
			"personad inquiry -db personad.db -reference-id user-1234 -limit 1")
	case listing:
		return nil
	case fs.NArg() != 1:
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
	switch {
	case c.id == "":
		found, err := c.list(ctx, eng)
		if err != nil {
			return err
		}
		v = map[string]any{"inquiries": found}
	case c.events:
		hist, err := eng.History(ctx, c.id)
		if err != nil {
			return err
		}
		v = map[string]any{"events": server.EventViews(hist)}
	default:
		if v, err = eng.Inquiry(ctx, c.id); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// list pages through the listing c.by selects, newest created first, up
// to c.limit inquiries.
func (c *inquiryCommand) list(ctx context.Context, eng *engine.Engine) ([]*engine.Inquiry, error) {
	found := []*engine.Inquiry{}
	q := c.by
	for {
		q.Limit = engine.MaxLimit
		if c.limit > 0 {
			q.Limit = min(engine.MaxLimit, c.limit-len(found))
		}
		page, next, err := eng.Inquiries(ctx, q)
		if err != nil {
			return nil, err
		}
		found = append(found, page...)
		if next == "" || (c.limit > 0 && len(found) >= c.limit) {
			return found, nil
		}
		q.Cursor = next
	}
}
