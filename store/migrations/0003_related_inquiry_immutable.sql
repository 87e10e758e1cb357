-- Once version 2's Go step has filled it in, related_inquiry_id is as
-- immutable as the other columns that describe an event.
DROP TRIGGER events_immutable;
CREATE TRIGGER events_immutable
BEFORE UPDATE OF seq, event_id, name, object_type, object_id, created_at, received_at, outcome, sha256,
	related_inquiry_id ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;
