package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// replayCommand ingests dead letters again (personad replay), after an
// upgrade taught personad to read them. It writes, so it takes the
// database's write lock and refuses while personad serve runs.
type replayCommand struct {
	stdout io.Writer
	db     string
	seqs   []int64
	now    func() time.Time
}

func (c *replayCommand) ParseFlags(args []string) error {
	fs := newFlagSet("replay", "replay -db FILE SEQ...", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return withHint(errors.New("want the seq of at least one dead letter"), "personad dead-letters -db "+c.db+" lists them; then personad replay -db "+c.db+" SEQ...")
	}
	for _, a := range fs.Args() {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 1 {
			return withHint(fmt.Errorf("%q is not a dead letter's seq", a), "the SEQ column of personad dead-letters -db "+c.db)
		}
		c.seqs = append(c.seqs, n)
	}
	return nil
}

// Run replays each seq in the order given, reporting one line each. It
// fails when a dead letter could not be replayed (none such, still
// unreadable, scrubbed); one replayed before is skipped, not a failure, so
// that a replay can be run again.
func (c *replayCommand) Run(ctx context.Context) error {
	if err := existingDB(c.db); err != nil {
		return err
	}
	db, err := store.Open(c.db, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return withHint(err, "replay writes to the database: stop personad serve for the replay and start it again (Persona retries what it could not deliver meanwhile)")
	}
	if err != nil {
		return err
	}
	defer db.Close()
	p, _, _, err := policyToUse(ctx, db, false, false)
	if err != nil {
		return err
	}
	eng := engine.New(db, p)
	now := c.now
	if now == nil {
		now = time.Now
	}
	failed := 0
	for _, seq := range c.seqs {
		res, err := eng.Replay(ctx, seq, now())
		var line string
		switch {
		case err == nil:
			line = fmt.Sprintf("dead letter %d: replayed as event %s (%s): %s", seq, res.EventID, res.Name, describeResult(res))
		case errors.Is(err, engine.ErrAlreadyReplayed):
			line = err.Error() + "; skipped"
		case errors.Is(err, engine.ErrMalformed):
			failed++
			line = err.Error() + "; it stays a dead letter"
		case errors.Is(err, engine.ErrNotFound), errors.Is(err, engine.ErrScrubbed):
			failed++
			line = err.Error()
		default:
			return fmt.Errorf("dead letter %d: %w", seq, err)
		}
		if _, err := fmt.Fprintln(c.stdout, line); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d dead letters not replayed", failed, len(c.seqs))
	}
	return nil
}

// describeResult says in a few words what an ingest did.
func describeResult(res engine.Result) string {
	switch {
	case res.Duplicate:
		return "stored before (a redelivery), counted as another delivery"
	case res.InquiryID == "":
		return string(res.Outcome)
	case res.Change != nil:
		return fmt.Sprintf("%s, inquiry %s %s → %s", res.Outcome, res.InquiryID, orNone(res.Before), orNone(res.After))
	default:
		return fmt.Sprintf("%s, inquiry %s stays %s", res.Outcome, res.InquiryID, orNone(res.After))
	}
}
