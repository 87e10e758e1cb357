package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CheckStatus compares persona, the status Persona's API reports for an
// inquiry now, with the inquiry's projection, and keeps what it finds:
// when they agree, a drift kept before is cleared; when they differ, a
// Drift of the projection's status and persona's, checked at at, is kept
// (see Inquiry, which shows it). It returns the drift kept after the
// check (nil when they agree) and whether it wrote anything. A drift
// already kept with the same two statuses is returned as it is and
// nothing is written, so that reconciling again and again writes
// nothing; reads come first, outside any write unit. The projection is
// not changed: only events change it.
//
// Errors: one matching ErrNotFound when there is no such inquiry,
// ErrInvalid when persona is empty, ErrUnavailable when the store failed.
func (e *Engine) CheckStatus(ctx context.Context, inquiryID string, persona Status, at time.Time) (d *Drift, wrote bool, err error) {
	if persona == "" {
		return nil, false, fmt.Errorf("%w: inquiry %s: Persona's status is empty", ErrInvalid, quoteShort(inquiryID))
	}
	inq, err := e.store.GetInquiry(ctx, inquiryID)
	if err != nil {
		return nil, false, readError(err)
	}
	kept, err := e.store.Drifts(ctx, []string{inquiryID})
	if err != nil {
		return nil, false, unavailable(err)
	}
	old, had := kept[inquiryID]
	switch {
	case persona == inq.Status && !had:
		return nil, false, nil
	case persona != inq.Status && had && old.Status == inq.Status && old.PersonaStatus == persona:
		return &old, false, nil
	}
	var set *Drift
	if err := e.store.Update(ctx, func(tx Tx) error {
		// The projection may have moved since it was read: check the one
		// this unit sees.
		set = nil
		cur, err := tx.Inquiry(inquiryID)
		if err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("inquiry %s: %w", quoteShort(inquiryID), ErrNotFound)
		}
		if cur.Status == persona {
			return tx.ClearDrift(inquiryID)
		}
		set = &Drift{InquiryID: inquiryID, Status: cur.Status, PersonaStatus: persona, CheckedAt: at}
		return tx.SetDrift(set)
	}); err != nil {
		return nil, false, readError(err)
	}
	return set, true, nil
}

// readError returns a store's error as the engine returns it: one that
// matches ErrNotFound as it is, any other as ErrUnavailable.
func readError(err error) error {
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return unavailable(err)
}

// showDrifts adds to each inquiry of page whose kept drift is of its
// current status an AnomalyStatusDrift, copying the inquiry first (a
// store may share it). A drift of another status, which an event made
// stale, is not shown.
func (e *Engine) showDrifts(ctx context.Context, page []*Inquiry) error {
	if len(page) == 0 {
		return nil
	}
	ids := make([]string, len(page))
	for i, inq := range page {
		ids[i] = inq.ID
	}
	drifts, err := e.store.Drifts(ctx, ids)
	if err != nil {
		return unavailable(err)
	}
	for i, inq := range page {
		d, ok := drifts[inq.ID]
		if !ok || d.Status != inq.Status {
			continue
		}
		inq = inq.Clone()
		inq.Anomalies = append(inq.Anomalies, Anomaly{Kind: AnomalyStatusDrift, From: d.Status, To: d.PersonaStatus})
		page[i] = inq
	}
	return nil
}
