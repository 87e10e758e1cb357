package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/personad/personad/engine"
)

// State keeps a backfill's position between runs; *store.DB implements it.
type State interface {
	State(ctx context.Context, key string) (value string, found bool, err error)
	SetState(ctx context.Context, key, value string) error
}

// backfillKey is the State key of the backfill position.
const backfillKey = "backfill"

// backfillState is what a backfill saves after each page of inquiries.
type backfillState struct {
	Since    time.Time `json:"since"`
	Cursor   string    `json:"cursor"` // page[after] of the next page; "" before the first
	Pages    int       `json:"pages"`
	Listed   int       `json:"inquiries_listed"`
	Complete bool      `json:"complete"`
}

// BackfillReport says what a backfill did, over every run of it since it
// started (a resumed run counts the pages of the runs before it).
type BackfillReport struct {
	Report
	Since time.Time `json:"since"`
	// Resumed: this run continued where an interrupted one stopped.
	Resumed bool `json:"resumed"`
	// Pages and Listed count the inquiry pages read and the inquiries
	// they listed, this run and the interrupted ones before it.
	Pages  int `json:"pages"`
	Listed int `json:"inquiries_listed"`
	// Complete: the last page was read.
	Complete bool `json:"complete"`
}

// Backfill imports the history of the inquiries Persona lists as created
// at or after since: page by page, every event of each inquiry that
// personad does not have (every page of its events, not only the newest),
// then a comparison of the status the listing shows with the fold. After
// each page it saves its position in st, so that a run interrupted (killed,
// or ended by ctx) is continued by the next one with the same since; a run
// with another since, or after a complete one, starts from the newest
// inquiry. Ingesting is idempotent, so a page read twice recovers nothing
// twice. progress, when not nil, is called after each page.
//
// Errors of single inquiries are in the report; Backfill returns an error
// when listing the inquiries failed, the state could not be read or saved,
// Persona refused the API key, or ctx ended. The report then holds what
// was done.
func (r *Reconciler) Backfill(ctx context.Context, st State, since time.Time, progress func(BackfillReport)) (BackfillReport, error) {
	select {
	case <-r.turn:
	case <-ctx.Done():
		return BackfillReport{}, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
	defer func() { r.turn <- struct{}{} }()

	since = since.UTC()
	rep := BackfillReport{Report: Report{StartedAt: r.cfg.Now()}, Since: since}
	pos, err := loadBackfill(ctx, st)
	if err != nil {
		return rep, err
	}
	if pos.Since.Equal(since) && !pos.Complete && pos.Pages > 0 {
		rep.Resumed = true
	} else {
		pos = backfillState{Since: since}
	}
	rep.Pages, rep.Listed = pos.Pages, pos.Listed
	finish := func(err error) (BackfillReport, error) {
		rep.FinishedAt = r.cfg.Now()
		r.done(&rep.Report, err)
		return rep, err
	}
	for !pos.Complete {
		page, err := r.cfg.API.ListInquiries(ctx, since, pos.Cursor)
		if err != nil {
			return finish(fmt.Errorf("reconcile: listing inquiries created since %s: %w", since.Format(time.RFC3339), err))
		}
		status := make(map[string]engine.Status, len(page.Inquiries))
		ids := make([]string, 0, len(page.Inquiries))
		for _, inq := range page.Inquiries {
			if _, dup := status[inq.ID]; !dup {
				ids = append(ids, inq.ID)
			}
			status[inq.ID] = engine.Status(inq.Status)
		}
		err = r.checkAll(ctx, ids, &rep.Report, func(ctx context.Context, id string, part *Report) error {
			if err := r.recoverEvents(ctx, id, true, part); err != nil {
				return err
			}
			part.Checked++
			return r.compare(ctx, id, status[id], part)
		})
		if err != nil {
			return finish(err)
		}
		pos.Pages++
		pos.Listed += len(page.Inquiries)
		pos.Cursor, pos.Complete = page.Next, page.Next == ""
		if err := saveBackfill(ctx, st, pos); err != nil {
			return finish(err)
		}
		rep.Pages, rep.Listed, rep.Complete = pos.Pages, pos.Listed, pos.Complete
		if progress != nil {
			progress(rep)
		}
	}
	return finish(nil)
}

func loadBackfill(ctx context.Context, st State) (backfillState, error) {
	var pos backfillState
	v, found, err := st.State(ctx, backfillKey)
	if err != nil || !found {
		return pos, err
	}
	if err := json.Unmarshal([]byte(v), &pos); err != nil {
		// Not ours to guess at: start over, which is safe (idempotent).
		return backfillState{}, nil
	}
	return pos, nil
}

func saveBackfill(ctx context.Context, st State, pos backfillState) error {
	b, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	if err := st.SetState(ctx, backfillKey, string(b)); err != nil {
		return fmt.Errorf("reconcile: saving the backfill's position: %w", err)
	}
	return nil
}
