-- Version 11: fewer bytes, in fewer pages.
--
-- Every body (events, conflicts, dead letters) is now kept in the form
-- of internal/bodycodec: a tag byte, then the body raw or S2-compressed
-- with a dictionary made from Persona's example bodies. sha256 and the
-- hash chain stay those of the body as received.
--
-- events is rebuilt, so that its columns are in the order that keeps a
-- row small to rewrite (the body, by far the largest, last) and so that
-- the old raw bodies leave the file: the Go step of this version copies
-- every row of events_v10, in seq order, with its body encoded and its
-- event_key, then drops events_v10 (secure_delete zeroes its pages), and
-- encodes the bodies of conflicts and dead_letters in place.
--
-- event_key is a 64-bit hash (FNV-1a) of event_id, and the dedup lookup
-- goes through its index, of 8-byte keys, instead of a unique index of
-- the ids themselves: a lookup compares event_id too, so two ids of one
-- key stay two events, and events_unique_id keeps an id from being
-- stored twice.
--
-- events_by_object and events_by_related_inquiry stay as they were: the
-- log is read by inquiry (object_type, object_id) and by related inquiry,
-- but also by any object's id (forgetting a verification, an account),
-- which one index keyed by inquiry cannot find; an inquiry event is in
-- one of them only (the other is partial).
--
-- inquiries keeps its rowid: keyed by id alone (WITHOUT ROWID), its
-- docs inside its B-tree, it wrote more to the WAL per
-- delivery on the realistic store benchmark (about 8 %), not less.
DROP TRIGGER events_append_only;
DROP TRIGGER events_immutable;
DROP TRIGGER events_parts_immutable;
DROP TRIGGER events_chain_immutable;
DROP INDEX events_by_object;
DROP INDEX events_by_related_inquiry;
ALTER TABLE events RENAME TO events_v10;

CREATE TABLE events (
	seq                INTEGER PRIMARY KEY AUTOINCREMENT,
	event_key          INTEGER NOT NULL, -- FNV-1a of event_id, as a signed 64-bit integer
	event_id           TEXT    NOT NULL,
	name               TEXT    NOT NULL,
	object_type        TEXT    NOT NULL,
	object_id          TEXT    NOT NULL,
	related_inquiry_id TEXT,             -- see version 2
	created_at         INTEGER NOT NULL, -- unix milliseconds
	received_at        INTEGER NOT NULL, -- unix milliseconds, first delivery
	attempts_made      INTEGER NOT NULL, -- highest Persona-Webhook-Attempts-Made
	deliveries         INTEGER NOT NULL,
	outcome            TEXT    NOT NULL, -- as first acknowledged
	source             TEXT    NOT NULL DEFAULT 'webhook' CHECK (source IN ('webhook', 'api')), -- see version 9
	sha256             BLOB    NOT NULL, -- of the body as received
	chain              BLOB,             -- see version 4
	parts              TEXT,             -- see version 4
	body               BLOB    NOT NULL  -- bodycodec's form of the body as received, or scrubbed
);
CREATE INDEX events_by_key ON events (event_key);
CREATE INDEX events_by_object ON events (object_id, object_type);
CREATE INDEX events_by_related_inquiry ON events (related_inquiry_id)
	WHERE related_inquiry_id IS NOT NULL;

CREATE TRIGGER events_unique_id BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM events WHERE event_key = NEW.event_key AND event_id = NEW.event_id)
BEGIN
	SELECT RAISE(ABORT, 'event already stored');
END;

CREATE TRIGGER events_append_only BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_immutable
BEFORE UPDATE OF seq, event_key, event_id, name, object_type, object_id, created_at, received_at, outcome, sha256,
	related_inquiry_id, source ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_parts_immutable
BEFORE UPDATE OF parts ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_chain_immutable
BEFORE UPDATE OF chain ON events WHEN OLD.chain IS NOT NULL
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;
