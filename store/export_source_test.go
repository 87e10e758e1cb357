package store

// VersionEventSource is the schema version of events' source and of
// drifts, for the migration test.
const VersionEventSource = versionEventSource

// ChainLink is the hash chain's link after prev, so that a test can write
// a file of an older version whose chain verifies.
var ChainLink = chainLink
