package store

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
