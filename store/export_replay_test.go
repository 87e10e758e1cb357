package store

// VersionDeadLetterReplay is the schema version of the dead letters'
// replay mark, for the migration test.
const VersionDeadLetterReplay = versionDeadLetterReplay
