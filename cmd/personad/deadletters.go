package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// deadLettersCommand lists the dead letters (personad dead-letters),
// reading the database read-only, so it works while personad serve runs.
type deadLettersCommand struct {
	stdout   io.Writer
	db       string
	limit    int
	cursor   int64
	jsonOut  bool
	withBody bool
}

func (c *deadLettersCommand) ParseFlags(args []string) error {
	fs := newFlagSet("dead-letters", "dead-letters -db FILE [-limit N] [-cursor C] [-json] [-body]", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	fs.IntVar(&c.limit, "limit", server.DefaultDeadLettersLimit, "dead letters per page, newest first (1.."+strconv.Itoa(engine.MaxLimit)+")")
	fs.Int64Var(&c.cursor, "cursor", 0, "the next page's cursor, printed at the end of a page")
	fs.BoolVar(&c.jsonOut, "json", false, "print the page as GET /v1/dead-letters answers it")
	fs.BoolVar(&c.withBody, "body", false, "include the bodies, as received (implies -json); they hold whatever personal data Persona sent")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return withHint(fmt.Errorf("unexpected argument %q", fs.Arg(0)), "personad dead-letters -db personad.db [-limit 50] [-cursor C]")
	}
	if c.limit < 1 || c.limit > engine.MaxLimit {
		return withHint(fmt.Errorf("-limit %d is out of range", c.limit), "-limit 50 (at most "+strconv.Itoa(engine.MaxLimit)+")")
	}
	if c.cursor < 0 {
		return withHint(errors.New("-cursor is negative"), "-cursor as printed at the end of the previous page")
	}
	c.jsonOut = c.jsonOut || c.withBody
	return nil
}

func (c *deadLettersCommand) Run(ctx context.Context) error {
	db, err := openExistingReadOnly(c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	page, next, err := engine.New(db, engine.Policy{}).DeadLetters(ctx, c.cursor, c.limit)
	if err != nil {
		return err
	}
	views := make([]server.DeadLetterView, len(page))
	for i, d := range page {
		views[i] = server.NewDeadLetterView(d, c.withBody)
	}
	if c.jsonOut {
		var cursor *string
		if next != 0 {
			s := strconv.FormatInt(next, 10)
			cursor = &s
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dead_letters": views, "next_cursor": cursor})
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tRECEIVED\tDELIVERIES\tSTATE\tSHA256\tREASON")
	for _, v := range views {
		state := "dead"
		switch {
		case v.ReplayedEventID != nil:
			state = "replayed as " + *v.ReplayedEventID
		case v.Scrubbed:
			state = "scrubbed"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", v.Seq, v.ReceivedAt, v.Deliveries, state, v.SHA256[:16], v.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != 0 {
		_, err = fmt.Fprintf(c.stdout, "more: personad dead-letters -db %s -limit %d -cursor %d\n", c.db, c.limit, next)
	}
	return err
}
