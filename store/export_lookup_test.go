package store

import (
	"context"
	"strings"

	"github.com/personad/personad/engine"
)

// ListingPlan returns SQLite's plan (EXPLAIN QUERY PLAN, one step a line)
// of the query Inquiries runs for q, on the read pool.
func ListingPlan(db *DB, q engine.Query) (string, error) {
	q, err := q.Normalize()
	if err != nil {
		return "", err
	}
	query, args, err := listingSQL(q)
	if err != nil {
		return "", err
	}
	rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "\n"), rows.Err()
}
