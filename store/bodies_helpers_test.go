package store_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"testing"

	"github.com/personad/personad/internal/bodycodec"
	"github.com/personad/personad/store"
)

// Bodies are stored compressed (internal/bodycodec), so a personal value
// can be missing from the file's raw bytes and still be on disk, inside
// an S2 block. Every test that looks for personal data on disk therefore
// scans the raw bytes of the file, its WAL and its shared memory (for
// what is left in freed pages, old frames, projections and indexes) and
// every stored body decoded (for what the compression hides).

// decodedBody is one body column's value, decoded.
type decodedBody struct {
	where   string // "events.body of evt_…", "conflicts.body #2", "dead_letters.body #1"
	eventID string // of an event or a conflict
	object  string // the object it is about: an event's, a conflict's stored event's; "" for a dead letter
	body    []byte
}

// storedBodies reads and decodes every body of events, conflicts and
// dead letters on a read-only connection of its own; a body that does
// not decode fails the test, since a scan of it would prove nothing. A
// file of a schema before store.VersionBodiesEncoded (a migration test's)
// keeps its bodies as received: none are returned for it.
func storedBodies(tb testing.TB, path string) []decodedBody {
	tb.Helper()
	bodies, err := storedBodiesErr(path)
	if err != nil {
		tb.Fatal(err)
	}
	return bodies
}

func storedBodiesErr(path string) ([]decodedBody, error) {
	var out []decodedBody
	err := readOnlyErr(path, func(q *sql.DB) error {
		var version int
		if err := q.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			return err
		}
		if version < store.VersionBodiesEncoded {
			return nil // bodies as received, which the raw bytes show
		}
		r, err := q.Query(`
			SELECT 'events.body of ' || event_id || ' (' || name || ', ' || object_id || ')', event_id, object_id, body FROM events
			UNION ALL SELECT 'conflicts.body #' || seq || ' of ' || event_id, event_id, object_id, body FROM conflicts
			UNION ALL SELECT 'dead_letters.body #' || seq, '', '', body FROM dead_letters`)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var b decodedBody
			var stored []byte
			if err := r.Scan(&b.where, &b.eventID, &b.object, &stored); err != nil {
				return err
			}
			if b.body, err = bodycodec.Decode(stored); err != nil {
				return fmt.Errorf("%s does not decode: %w", b.where, err)
			}
			out = append(out, b)
		}
		return r.Err()
	})
	return out, err
}

// bodiesHolding lists, for each of strs, the decoded stored bodies that
// hold it.
func bodiesHolding(tb testing.TB, path string, strs []string) []string {
	tb.Helper()
	var found []string
	for _, b := range storedBodies(tb, path) {
		for _, s := range strs {
			if bytes.Contains(b.body, []byte(s)) {
				found = append(found, fmt.Sprintf("%s holds %q", b.where, s))
			}
		}
	}
	return found
}
