-- Version 6: outbound notifications (serve -notify-url).

-- notify_endpoints: one row per URL personad posts the change feed to.
-- cursor is the seq of the last change the endpoint acknowledged with a
-- 2xx (or the feed's head when the endpoint was first configured, when it
-- starts from there): the pusher sends the changes after it, in seq
-- order, and moves it only after a 2xx, so a crash sends a change again
-- and never skips one. failing_since is when the change being sent first
-- failed (NULL while deliveries succeed): the give-up clock survives a
-- restart. parked_at is when personad gave up (or the endpoint answered
-- 410 Gone); a parked endpoint is sent nothing until "personad notify
-- -resume" clears it. Times are unix milliseconds.
CREATE TABLE notify_endpoints (
	url           TEXT    PRIMARY KEY,
	cursor        INTEGER NOT NULL CHECK (cursor >= 0),
	added_at      INTEGER NOT NULL,
	delivered_at  INTEGER,          -- the last 2xx
	failing_since INTEGER,
	last_error    TEXT,             -- of the last failed attempt, no secrets
	parked_at     INTEGER,
	parked_reason TEXT
);
