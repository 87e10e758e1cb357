-- Events about other objects (verifications, reports, inquiry sessions)
-- name the inquiry they belong to, so that redacting the inquiry scrubs
-- them too. NULL for inquiry events (object_id is the inquiry) and for
-- objects that belong to no inquiry. The events stored before this
-- version are filled in by the store's Go step for version 2. ADD COLUMN
-- puts it after the body; the queries that read it read the body anyway.
ALTER TABLE events ADD COLUMN related_inquiry_id TEXT;
CREATE INDEX events_by_related_inquiry ON events (related_inquiry_id)
	WHERE related_inquiry_id IS NOT NULL;
