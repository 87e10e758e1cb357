-- Version 4: what belongs to whom, what personad must forget, and a hash
-- chain over the event log.

-- links: object_id belongs to owner_id (a verification to its inquiry, an
-- inquiry to its account, a case to its inquiries...). Learned from every
-- direction Persona gives: an object's own relationships and the lists of
-- an inquiry's verifications, reports, sessions, documents and selfies.
CREATE TABLE links (
	object_id TEXT NOT NULL,
	owner_id  TEXT NOT NULL,
	PRIMARY KEY (object_id, owner_id)
) WITHOUT ROWID;
CREATE INDEX links_by_owner ON links (owner_id, object_id);

-- forgotten: every object whose data personad must forget, because it was
-- redacted or belongs (transitively) to a redacted object. mode 1 keeps an
-- inquiry's reference-id (Persona keeps it on a direct inquiry redaction),
-- mode 2 forgets it too. Rows are never deleted; mode only rises.
CREATE TABLE forgotten (
	id   TEXT    PRIMARY KEY NOT NULL,
	mode INTEGER NOT NULL,
	at   INTEGER NOT NULL -- unix milliseconds, when personad learned it
) WITHOUT ROWID;

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
CREATE TRIGGER events_chain_immutable
BEFORE UPDATE OF chain ON events WHEN OLD.chain IS NOT NULL
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;
