package store

// SchemaNotify is the schema version that adds notify_endpoints.
const SchemaNotify = schemaNotify
