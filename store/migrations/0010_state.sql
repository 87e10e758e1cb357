-- state: small named values that personad's own jobs keep between runs
-- (the position of an interrupted backfill), as text. Unlike settings,
-- nothing here changes what a fold gives.
CREATE TABLE state (
	key   TEXT PRIMARY KEY NOT NULL,
	value TEXT NOT NULL
) WITHOUT ROWID;
