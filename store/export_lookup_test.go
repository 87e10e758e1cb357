package store

import (
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
	return QueryPlan(db, query, args...)
}
