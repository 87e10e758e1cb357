-- Version 9: reconciliation with Persona's REST API.

-- source: how an event first arrived, 'webhook' or 'api' (fetched from
-- Persona's Events API after its delivery was missed). Every event stored
-- before this version came by webhook. It is as immutable as the other
-- columns that describe an event, and not part of the chain, which
-- covers what Persona sent.
ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook'
	CHECK (source IN ('webhook', 'api'));
DROP TRIGGER events_immutable;
CREATE TRIGGER events_immutable
BEFORE UPDATE OF seq, event_id, name, object_type, object_id, created_at, received_at, outcome, sha256,
	related_inquiry_id, source ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;

-- drifts: an inquiry whose status Persona's API reported otherwise than
-- its projection, status, holds: persona_status is Persona's answer,
-- checked_at (unix milliseconds) when it was asked. At most one per
-- inquiry; a check that finds them agreeing deletes it. The projection is
-- not changed (it is what the log folds to).
CREATE TABLE drifts (
	inquiry_id     TEXT    PRIMARY KEY NOT NULL,
	status         TEXT    NOT NULL,
	persona_status TEXT    NOT NULL,
	checked_at     INTEGER NOT NULL
) WITHOUT ROWID;
