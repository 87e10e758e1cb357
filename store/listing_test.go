package store_test

import (
	"bytes"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/store"
)

// TestListingColumnsFollowTheDoc ingests personad bench's stream in its
// order and shuffled, so that statuses, decisions, reference-ids,
// accounts and created-ats move in every order, with redactions that
// forget reference-ids: every projection's listing columns must then be
// what its doc says, although the writer sets only those that changed.
func TestListingColumnsFollowTheDoc(t *testing.T) {
	gen := loadgen.New(loadgen.Config{Seed: 7, Events: 3000, Open: 40})
	var bodies, redactions [][]byte
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		bodies = append(bodies, ev.Body)
		if ev.Name == "account.created" && len(redactions) < 10 {
			// Its account redacted: the inquiries' reference-ids are forgotten.
			r := bytes.Replace(ev.Body, []byte(`"name":"account.created"`), []byte(`"name":"account.redacted"`), 1)
			redactions = append(redactions, bytes.ReplaceAll(r, []byte(ev.ID), []byte(ev.ID+"R")))
		}
	}
	if len(redactions) < 10 {
		t.Fatalf("%d account redactions made, want 10", len(redactions))
	}
	bodies = append(bodies, redactions...)
	for _, name := range []string{engine.EventRedacted, engine.EventMarkedForReview, engine.EventDeclined} {
		evs, err := loadgen.Example(loadgen.ExampleConfig{Name: name, Seed: 5, End: loadgen.Epoch.Add(12 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			bodies = append(bodies, ev.Body)
		}
	}
	shuffled := append([][]byte(nil), bodies...)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, order := range []struct {
		name   string
		bodies [][]byte
	}{{"stream", bodies}, {"shuffled", shuffled}} {
		t.Run(order.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "personad.db")
			db := openPath(t, path, store.Options{})
			eng := engine.New(db, engine.Policy{AutoDecide: true})
			for _, b := range order.bodies {
				ingest(t, eng, b)
			}
			checked, forgotten := 0, 0
			readOnly(t, path, func(q *sql.DB) error {
				rows, err := q.Query(`SELECT id, doc, status, decision, updated_at, reference_id, account_id, template_id, created_at FROM inquiries`)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var (
						id, doc                              string
						status, decision, ref, account, tmpl sql.NullString
						updated, created                     int64
					)
					if err := rows.Scan(&id, &doc, &status, &decision, &updated, &ref, &account, &tmpl, &created); err != nil {
						return err
					}
					inq := new(engine.Inquiry)
					if err := inq.UnmarshalJSON([]byte(doc)); err != nil {
						return err
					}
					got := []any{status.String, decision.String, updated, ref.String, account.String, tmpl.String, created}
					want := []any{string(inq.Status), string(inq.Decision), inq.UpdatedAt.UnixMilli(), inq.ReferenceID,
						inq.AccountID, inq.TemplateID, inq.ListedAt(true).UnixMilli()}
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("inquiry %s: listing columns %v, doc says %v", id, got, want)
							break
						}
					}
					checked++
					if inq.ReferenceID == "" {
						forgotten++
					}
				}
				return rows.Err()
			})
			if checked < 100 || forgotten == 0 {
				t.Errorf("%d projections checked, %d with a forgotten reference-id: want more", checked, forgotten)
			}
		})
	}
}
