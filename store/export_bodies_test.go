package store

import (
	"context"
	"strings"
)

// VersionBodiesEncoded is the schema version from which bodies are
// stored encoded and events have an event_key, for the migration test.
const VersionBodiesEncoded = bodiesEncodedVersion

// SetEventKey replaces the hash of event ids until the returned func
// restores it, so that a test can force two ids onto one key.
func SetEventKey(key func(eventID string) int64) (restore func()) {
	prev := eventKey
	eventKey = key
	return func() { eventKey = prev }
}

// PageCount is the writer's PRAGMA page_count: the database's pages, WAL
// frames included, which Stats adds the WAL file's size to.
func PageCount(db *DB) (int, error) {
	var n int
	err := db.writer.db.QueryRow("PRAGMA page_count").Scan(&n)
	return n, err
}

// EventQueries are the queries that find events, by what they are for,
// with an argument for each placeholder.
var EventQueries = map[string]struct {
	SQL  string
	Args []any
}{
	"dedup lookup":          {writerSQL[sFindEvent], []any{1, "evt_1"}},
	"an inquiry's events":   {writerSQL[sInquiryEvents], []any{"inq_1"}},
	"related events":        {relatedEventsSQL, []any{"inq_1"}},
	"an object's bodies":    {writerSQL[sObjectBodies], []any{"ver_1"}},
	"an inquiry's parts":    {writerSQL[sParts], []any{"inq_1"}},
	"an event's body":       {writerSQL[sEventBody], []any{1}},
	"rebuild's bodies":      {inquiryBodiesSQL, nil},
	"an object's conflicts": {writerSQL[sConflictBodies], []any{"ver_1"}},
}

// QueryPlan returns SQLite's plan (EXPLAIN QUERY PLAN, one step a line)
// of query on the read pool.
func QueryPlan(db *DB, query string, args ...any) (string, error) {
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
