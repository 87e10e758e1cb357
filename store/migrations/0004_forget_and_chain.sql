-- Version 4: what belongs to whom, what personad must forget, and a hash
-- chain over the event log.

-- links: object_id belongs to owner_id (a verification to its inquiry, an
-- inquiry to its account, a case to its inquiries...), learned from an
-- object's own relationships. What an inquiry lists as its own (its
-- verifications, reports, sessions, documents and selfies) is kept with
-- each inquiry event, in events.parts, so that the lists its every event
-- repeats cost no other write; the migration puts the parts of the events
-- stored before it here.
-- Keyed by owner first: forgetting walks from an owner to what belongs to
-- it, and one B-tree is all a new link writes.
CREATE TABLE links (
	owner_id  TEXT NOT NULL,
	object_id TEXT NOT NULL,
	PRIMARY KEY (owner_id, object_id)
) WITHOUT ROWID;

-- forgotten: every object whose data personad must forget, because it was
-- redacted or belongs (transitively) to a redacted object. mode 1 keeps an
-- inquiry's reference-id (Persona keeps it on a direct inquiry redaction),
-- mode 2 forgets it too. Rows are never deleted; mode only rises.
CREATE TABLE forgotten (
	id   TEXT    PRIMARY KEY NOT NULL,
	mode INTEGER NOT NULL,
	at   INTEGER NOT NULL -- unix milliseconds, when personad learned it
) WITHOUT ROWID;

-- A dead letter is kept once per body SHA-256; a redelivery counts.
ALTER TABLE dead_letters ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 1;
CREATE INDEX dead_letters_by_sha256 ON dead_letters (sha256);

-- settings: small named integers (the retention mark).
CREATE TABLE settings (
	key   TEXT    PRIMARY KEY NOT NULL,
	value INTEGER NOT NULL
) WITHOUT ROWID;

-- Bodies are now found by object id alone (a verification an inquiry
-- lists, an account's inquiries), so the index leads with the id.
DROP INDEX events_by_object;
CREATE INDEX events_by_object ON events (object_id, object_type);

-- chain: SHA-256(previous link || seq || event id || sha256 || received_at),
-- see store/chain.go. The Go step of version 4 fills it in for old rows,
-- in seq order; after that a link never changes.
ALTER TABLE events ADD COLUMN chain BLOB;
-- parts: the ids, space-separated, an inquiry event lists as the
-- inquiry's own; NULL for other events and for rows older than version 4.
ALTER TABLE events ADD COLUMN parts TEXT;
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
