-- Find by user: an application knows its own user id (Persona's
-- reference-id), a Persona account or a template, not an inquiry id.
-- These columns copy what the projection (doc) says, NULL where it says
-- nothing; SaveInquiry writes them with every projection, so a forgotten
-- reference-id (an account redaction nulls it) is gone from the column in
-- the same write that takes it out of doc. created_at is the inquiry's
-- created-at, or its updated_at while no event showed one, in unix
-- milliseconds: the listings by user, account or template sort on it,
-- newest first. The Go step of this version fills them in for the
-- projections stored before it, from doc.
ALTER TABLE inquiries ADD COLUMN reference_id TEXT;
ALTER TABLE inquiries ADD COLUMN account_id TEXT;
ALTER TABLE inquiries ADD COLUMN template_id TEXT;
ALTER TABLE inquiries ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;

-- Each serves "filter by X, newest created first, after a cursor" from
-- the index alone; partial, so the inquiries without one cost nothing.
CREATE INDEX inquiries_by_reference ON inquiries (reference_id, created_at DESC, id DESC)
	WHERE reference_id IS NOT NULL;
CREATE INDEX inquiries_by_account ON inquiries (account_id, created_at DESC, id DESC)
	WHERE account_id IS NOT NULL;
CREATE INDEX inquiries_by_template ON inquiries (template_id, created_at DESC, id DESC)
	WHERE template_id IS NOT NULL;
