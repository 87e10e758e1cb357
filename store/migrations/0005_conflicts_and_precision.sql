-- Version 5: conflicting redeliveries, and projections at the precision
-- Persona sent.

-- conflicts: a body that arrived under the id of a stored event but is not
-- the body stored (another SHA-256). The event keeps its first body, which
-- is what the fold reads; every other body is kept here, once per event
-- id and SHA-256, and counts its deliveries. A conflict of an inquiry
-- event is an anomaly of that inquiry's projection, so Rebuild and Verify
-- derive it from this table. Rows are never deleted; the only updates are
-- another delivery and scrubbing the body (redaction, retention).
CREATE TABLE conflicts (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id       TEXT    NOT NULL, -- of the stored event
	object_id      TEXT    NOT NULL, -- the stored event's object
	body_object_id TEXT    NOT NULL, -- the object this body is about
	received_at    INTEGER NOT NULL, -- unix milliseconds, first delivery
	deliveries     INTEGER NOT NULL,
	sha256         BLOB    NOT NULL, -- of the body as received
	body           BLOB    NOT NULL  -- as received, or scrubbed
);
CREATE UNIQUE INDEX conflicts_by_event ON conflicts (event_id, sha256);
CREATE INDEX conflicts_by_object ON conflicts (object_id);
CREATE INDEX conflicts_by_body_object ON conflicts (body_object_id);

CREATE TRIGGER conflicts_append_only BEFORE DELETE ON conflicts
BEGIN
	SELECT RAISE(ABORT, 'conflicts are append-only');
END;

CREATE TRIGGER conflicts_immutable
BEFORE UPDATE OF seq, event_id, object_id, body_object_id, received_at, sha256 ON conflicts
BEGIN
	SELECT RAISE(ABORT, 'conflicts are append-only');
END;

-- Projections (inquiries.doc) now keep their times at the precision the
-- events' created-at carried, not truncated to the millisecond; the Go
-- step of version 5 folds every inquiry again and replaces the
-- projections that differ, as personad rebuild does. events.created_at,
-- inquiries.updated_at and the other time columns stay unix
-- milliseconds: the fold reads created-at from the bodies, and listings
-- sort at the millisecond their cursors carry.
