package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/store"
)

// backfillCommand imports the history of inquiries created before
// personad was deployed (personad backfill), resumably. It writes, so it
// takes the database's write lock and refuses while personad serve runs.
type backfillCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	db      string
	since   time.Time
	persona personaFlags
	workers int
	asJSON  bool
}

func (c *backfillCommand) ParseFlags(args []string) error {
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	fs := newFlagSet("backfill", "backfill -db FILE -since 2026-01-01 [flags]", c.stderr)
	fs.StringVar(&c.db, "db", "personad.db", "database file (created if missing)")
	since := fs.String("since", "", "import the inquiries created at or after this date (2026-01-01) or instant (RFC 3339); required")
	c.persona.register(fs)
	fs.IntVar(&c.workers, "workers", reconcile.DefaultWorkers, "inquiries imported at once (the rate limit bounds the requests)")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.since, err = parseSince(*since); err != nil {
		return withHint(err, "-since 2026-01-01 (or 2026-01-01T00:00:00Z)")
	}
	if c.workers < 1 {
		return withHint(fmt.Errorf("-workers %d is not positive", c.workers), "-workers 4")
	}
	return c.persona.load(c.getenv, true)
}

// parseSince reads a date (UTC midnight) or an RFC 3339 instant.
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("-since is required")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-since %q is neither a date nor an RFC 3339 instant", s)
	}
	return t.UTC(), nil
}

// Run backfills and prints the report; a progress line per page of
// inquiries goes to stderr. It fails when the run met an error: running it
// again continues where it stopped.
func (c *backfillCommand) Run(ctx context.Context) error {
	db, err := store.Open(c.db, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return withHint(err, "backfill writes to the database: run it before starting personad serve, or stop serve meanwhile (Persona retries what it could not deliver)")
	}
	if err != nil {
		return err
	}
	defer db.Close()
	rec, err := newReconciler(ctx, db, &c.persona, 0, 0, c.stderr, c.workers)
	if err != nil {
		return err
	}
	started := time.Now()
	rep, runErr := rec.Backfill(ctx, db, c.since, func(p reconcile.BackfillReport) {
		fmt.Fprintf(c.stderr, "backfill: %d pages, %d inquiries listed, %d events recovered, %d errors (%.1f inquiries/s)\n",
			p.Pages, p.Listed, p.Recovered, len(p.Errors), float64(p.Checked)/time.Since(started).Seconds())
	})
	if err := c.print(rep); err != nil {
		return err
	}
	switch {
	case runErr != nil:
		return withHint(runErr, "run the same personad backfill again: it continues where this one stopped")
	case !rep.OK():
		return fmt.Errorf("backfill: %d inquiries could not be imported", len(rep.Errors))
	}
	return nil
}

func (c *backfillCommand) print(rep reconcile.BackfillReport) error {
	if c.asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	state := "complete"
	if !rep.Complete {
		state = "interrupted: run it again to continue"
	}
	if rep.Resumed {
		state += ", resumed"
	}
	if _, err := fmt.Fprintf(c.stdout, "backfill since %s: %d pages, %d inquiries listed (%s)\n",
		rep.Since.Format(time.RFC3339), rep.Pages, rep.Listed, state); err != nil {
		return err
	}
	rep.RecoveredEvents = nil // thousands of lines; -json has them
	return printReport(c.stdout, rep.Report, false)
}
