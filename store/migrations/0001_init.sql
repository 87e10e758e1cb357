-- The append-only event log: one row per distinct event id. Rows are never
-- deleted; the only updates are another delivery of the same event
-- (deliveries, attempts_made) and scrubbing a redacted inquiry's body.
-- The body comes last so that reading the other columns never walks its
-- overflow pages.
CREATE TABLE events (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id      TEXT    NOT NULL UNIQUE,
	name          TEXT    NOT NULL,
	object_type   TEXT    NOT NULL,
	object_id     TEXT    NOT NULL,
	created_at    INTEGER NOT NULL, -- unix milliseconds
	received_at   INTEGER NOT NULL, -- unix milliseconds, first delivery
	attempts_made INTEGER NOT NULL, -- highest Persona-Webhook-Attempts-Made
	deliveries    INTEGER NOT NULL,
	outcome       TEXT    NOT NULL, -- as first acknowledged
	sha256        BLOB    NOT NULL, -- of the body as received
	body          BLOB    NOT NULL  -- as received, or scrubbed
);
CREATE INDEX events_by_object ON events (object_type, object_id);

CREATE TRIGGER events_append_only BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_immutable
BEFORE UPDATE OF seq, event_id, name, object_type, object_id, created_at, received_at, outcome, sha256 ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

-- One projection per inquiry: the engine's JSON in doc, plus the columns
-- listings filter and sort on.
CREATE TABLE inquiries (
	id         TEXT    PRIMARY KEY NOT NULL,
	status     TEXT,              -- NULL until an event shows one
	decision   TEXT,              -- NULL while undecided
	redacted   INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,  -- unix milliseconds
	anomalies  INTEGER NOT NULL,  -- len(doc.anomalies), for Stats
	doc        TEXT    NOT NULL
);
CREATE INDEX inquiries_by_updated ON inquiries (updated_at DESC, id DESC);
CREATE INDEX inquiries_by_status ON inquiries (status, updated_at DESC, id DESC);
CREATE INDEX inquiries_by_decision ON inquiries (decision, updated_at DESC, id DESC);

-- The change feed; seq is the cursor consumers keep.
CREATE TABLE changes (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	inquiry_id  TEXT    NOT NULL,
	event_id    TEXT    NOT NULL,
	from_status TEXT,
	to_status   TEXT,
	decision    TEXT,
	redacted    INTEGER NOT NULL,
	at          INTEGER NOT NULL   -- unix milliseconds
);

-- Authentic bodies that did not parse.
CREATE TABLE dead_letters (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	received_at INTEGER NOT NULL,  -- unix milliseconds
	reason      TEXT    NOT NULL,
	sha256      BLOB    NOT NULL,
	body        BLOB    NOT NULL
);
