package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// DeadLetters returns at most limit dead letters with Seq < before (all
// when before is 0), newest first, and the before of the next page: 0
// after the last. Errors: ErrInvalid for a limit outside 1..MaxLimit or a
// negative before; the store's.
func (e *Engine) DeadLetters(ctx context.Context, before int64, limit int) (page []DeadLetter, next int64, err error) {
	if limit < 1 || limit > MaxLimit {
		return nil, 0, errors.Join(ErrInvalid, errors.New("limit must be between 1 and "+strconv.Itoa(MaxLimit)))
	}
	if before < 0 {
		return nil, 0, errors.Join(ErrInvalid, errors.New("a dead letter cursor is a seq ≥ 1"))
	}
	// One more than asked says whether there is a next page, so that the
	// last page says so rather than a further, empty one.
	page, err = e.store.DeadLetterPage(ctx, before, limit+1)
	if err != nil {
		return nil, 0, err
	}
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1].Seq
	}
	return page, next, nil
}

// DeadLetter returns one dead letter. Errors: ErrNotFound; the store's.
func (e *Engine) DeadLetter(ctx context.Context, seq int64) (*DeadLetter, error) {
	return e.store.GetDeadLetter(ctx, seq)
}

// Replay ingests the dead letter seq again, as a delivery received when
// it was first received: a personad that learned to read it stores, folds
// and feeds it as it would have then, dedup, redaction and all. It was
// authenticated at receipt, so it is not checked again. In the unit that
// stores it, the dead letter is marked replayed, with at and the event's
// id, so that it is never replayed twice.
//
// Errors: ErrNotFound; ErrAlreadyReplayed (nothing is ingested again);
// ErrScrubbed when its body is no longer the one received, which a
// redaction or retention scrubbed: it is not what Persona sent, and is
// not ingested; a *ParseError (matching ErrMalformed) when this personad
// cannot read it either, which leaves it as it was; ErrUnavailable.
func (e *Engine) Replay(ctx context.Context, seq int64, at time.Time) (Result, error) {
	dl, err := e.store.GetDeadLetter(ctx, seq)
	if err != nil {
		return Result{}, err
	}
	if dl.Replayed() {
		return Result{}, replayedError(dl)
	}
	if sha256.Sum256(dl.Body) != dl.SHA256 {
		return Result{}, fmt.Errorf("dead letter %d: %w: its body was scrubbed (by a redaction or by retention) after it was received, so it is no longer what Persona sent; it is not replayed", seq, ErrScrubbed)
	}
	ev, err := Parse(dl.Body)
	if err != nil {
		return Result{Outcome: OutcomeDeadLetter}, fmt.Errorf("dead letter %d still does not parse: %w", seq, err)
	}
	d := Delivery{Body: dl.Body, ReceivedAt: dl.ReceivedAt, Source: SourceWebhook}
	res, err := e.ingestEvent(ctx, ev, d, func(tx Tx) error { return tx.MarkDeadLetterReplayed(seq, at, ev.ID) })
	if errors.Is(err, ErrAlreadyReplayed) {
		// Replayed by another caller since it was read above.
		if again, gerr := e.store.GetDeadLetter(ctx, seq); gerr == nil && again.Replayed() {
			return Result{}, replayedError(again)
		}
	}
	return res, err
}

func replayedError(dl *DeadLetter) error {
	return fmt.Errorf("dead letter %d: %w as event %s at %s", dl.Seq, ErrAlreadyReplayed,
		quoteShort(dl.ReplayedEventID), dl.ReplayedAt.UTC().Format(time.RFC3339))
}
