package store

import (
	"context"

	"github.com/personad/personad/engine"
)

// StatusCounts returns how many inquiries are in each status, for metrics;
// an inquiry no event has given a status yet counts under "". Errors:
// engine.ErrUnavailable.
func (db *DB) StatusCounts(ctx context.Context) (map[engine.Status]int64, error) {
	rows, err := db.query(ctx, `SELECT coalesce(status, ''), count(*) FROM inquiries GROUP BY 1`)
	if err != nil {
		return nil, unavailable("count inquiries", err)
	}
	defer rows.Close()
	counts := map[engine.Status]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, unavailable("count inquiries", err)
		}
		counts[engine.Status(s)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("count inquiries", err)
	}
	return counts, nil
}
