package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// retainCommand is "personad retain": store.Retain once, on a database
// no daemon is serving.
type retainCommand struct {
	stdout, stderr io.Writer
	db             string
	olderThan      time.Duration
	autoDecide     bool
}

func (c *retainCommand) ParseFlags(args []string) error {
	fs := newFlagSet("retain", "retain -db FILE -older-than DURATION", c.stderr)
	fs.StringVar(&c.db, "db", "personad.db", "database file")
	fs.BoolVar(&c.autoDecide, "auto-decide", false, "the policy serve uses: needed when this run migrates an older database, which folds some inquiries again")
	fs.DurationVar(&c.olderThan, "older-than", 0, "scrub the bodies of events and dead letters received longer ago than this (required; 2160h is 90 days)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.olderThan <= 0 {
		return withHint(fmt.Errorf("-older-than must be a positive duration, not %v", c.olderThan), "personad retain -db "+c.db+" -older-than 2160h")
	}
	return nil
}

func (c *retainCommand) Run(ctx context.Context) error {
	if err := existingDB(c.db); err != nil {
		return err
	}
	// Chunks are acknowledged without waiting for a checkpoint, which a
	// reader holding an old snapshot would stall; Close checkpoints.
	db, err := store.Open(c.db, store.Options{ForgetWithin: time.Second, Policy: engine.Policy{AutoDecide: c.autoDecide}})
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-c.olderThan)
	rep, err := db.Retain(ctx, cutoff)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, store.ErrForgetPending) {
		return err
	}
	if _, perr := fmt.Fprintf(c.stdout, "scrubbed %d of %d event bodies, %d of %d dead letters and %d of %d conflicting bodies received before %s in %v\n",
		rep.EventsScrubbed, rep.EventsScanned, rep.DeadLettersScrubbed, rep.DeadLettersScanned,
		rep.ConflictsScrubbed, rep.ConflictsScanned, cutoff.UTC().Format(time.RFC3339), rep.Duration.Round(time.Millisecond)); perr != nil {
		return perr
	}
	if err != nil { // ErrForgetPending: committed, but old pages may remain in the WAL
		return withHint(err, "end the backup or Litestream snapshot, then run personad retain again (or start serve): the next open checkpoints")
	}
	return nil
}

// retainInterval is how often serve runs retention: a tenth of the
// retention period, between a minute and an hour.
func retainInterval(retain time.Duration) time.Duration {
	return min(time.Hour, max(time.Minute, retain/10))
}

// retainLoop runs db.Retain for bodies older than retain now and then
// every retainInterval, until ctx ends.
func retainLoop(ctx context.Context, db *store.DB, retain time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(retainInterval(retain))
	defer tick.Stop()
	for {
		retainOnce(ctx, db, retain, logger)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// retainOnce runs one retention pass and logs what it scrubbed (counts
// only) and any error.
func retainOnce(ctx context.Context, db *store.DB, retain time.Duration, logger *slog.Logger) {
	cutoff := time.Now().Add(-retain)
	rep, err := db.Retain(ctx, cutoff)
	if rep.EventsScrubbed > 0 || rep.DeadLettersScrubbed > 0 || rep.ConflictsScrubbed > 0 {
		logger.Info("retention scrubbed old bodies", "events", rep.EventsScrubbed, "dead_letters", rep.DeadLettersScrubbed,
			"conflicts", rep.ConflictsScrubbed,
			"received_before", cutoff.UTC().Format(time.RFC3339), "duration", rep.Duration.Round(time.Millisecond))
	}
	if err != nil && ctx.Err() == nil { // not a shutdown
		logger.Error("retention failed", "err", err)
	}
}

// background is a goroutine that Serve.Close cancels and waits for.
type background struct {
	stop context.CancelFunc
	done chan struct{}
}

// goBackground runs fn in a goroutine with a context that cancel ends.
func goBackground(fn func(ctx context.Context)) *background {
	ctx, stop := context.WithCancel(context.Background())
	b := &background{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		fn(ctx)
	}()
	return b
}

// cancel asks the goroutine to end; nil does nothing.
func (b *background) cancel() {
	if b != nil {
		b.stop()
	}
}

// wait returns once the goroutine ended; nil returns at once.
func (b *background) wait() {
	if b != nil {
		<-b.done
	}
}
