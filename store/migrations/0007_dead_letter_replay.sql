-- Dead letters can be replayed (personad replay): a personad that learned
-- to read a body an older one could not ingests it again, and marks the
-- dead letter with when and as which event, so that it is never replayed
-- twice. Both stay NULL until then. Listings page by seq, the rowid: no
-- index is needed.
ALTER TABLE dead_letters ADD COLUMN replayed_at INTEGER; -- unix milliseconds
ALTER TABLE dead_letters ADD COLUMN replayed_event_id TEXT;

-- A replay is recorded once: the mark is never changed or taken back.
CREATE TRIGGER dead_letters_replayed_once
BEFORE UPDATE OF replayed_at, replayed_event_id ON dead_letters
WHEN OLD.replayed_at IS NOT NULL OR OLD.replayed_event_id IS NOT NULL
BEGIN
	SELECT RAISE(ABORT, 'a dead letter is replayed once');
END;
