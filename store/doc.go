// Package store keeps personad's event log, inquiry projections and change
// feed in one SQLite file (modernc.org/sqlite, no cgo). *DB implements
// engine.Store.
//
// Writes go through one connection and one goroutine: concurrent Updates
// are batched into a single IMMEDIATE transaction (group commit), so one
// WAL sync acknowledges many events, and a failing update is rolled back
// alone (the batch runs again with a savepoint around each update). Reads
// use a separate pool of read-only connections and, in WAL mode, never
// wait for the writer's transactions.
//
// The file holds the event log (one row per event id, with its first
// body), the conflicting bodies that arrived later under a stored id
// (once per SHA-256, outside the hash chain), dead letters, projections
// and the change feed. A projection's times keep every digit of the
// created-ats they come from; the integer time columns are unix
// milliseconds, for listings and for SQL readers, and nothing folds on
// them.
//
// Bodies (events.body, conflicts.body, dead_letters.body) are stored in
// the form of internal/bodycodec: a tag byte, then the body raw (tag 0)
// or as an S2 block encoded with a dictionary made from Persona's example
// bodies (tag 1); a body of a tag this build does not know is an error,
// not a guess. An event's body is encoded by the engine in the
// delivering goroutine (DB implements engine.BodyEncoder), so the writer
// only writes; a body scrubbed inside a unit of work, a conflict and a
// dead letter are encoded by the writer. The SHA-256 and the hash chain
// are those of the body as received. An SQL reader of the file sees the
// encoded bytes: personad events and the query API decode them.
//
// An event is found by events.event_key, a 64-bit FNV-1a hash of its id,
// through an index of 8-byte keys; the lookup compares the id as well,
// and a trigger (events_unique_id) refuses a second row of one id, so a
// collision of keys costs a comparison and never merges two events. The
// log is read by inquiry through events_by_object (object_id,
// object_type) and by related inquiry through the partial
// events_by_related_inquiry; an inquiry event is in only the first.
//
// The writer keeps three bounded caches, each right because every write
// goes through it and each emptied when a batch fails or another process
// commits (PRAGMA data_version): the projections it last saved or read
// (10,000), the links known stored (100,000), and the parsed logs of
// recent inquiries (4,096 events, engine.HistoryTx), so that a late
// event re-folds its inquiry without reading or parsing a stored body. A
// log is cached from its inquiry's first event or the first re-fold that
// reads it, grows with each event appended, and is dropped when its
// bodies are rewritten (a redaction; retention empties the cache), when a
// conflict is kept for one of its events, or when the update that grew
// it is rolled back.
//
// # Durability: the pipelined commit
//
// With Options.Synchronous "full" (the default) an Update returns nil only
// once its writes are on the disk, yet the writer runs the next batch
// while the disk syncs. Its connection runs with synchronous=NORMAL:
// COMMIT writes the batch's WAL frames (the last one marked as a commit,
// all salted with the WAL header's salt and checksummed in one chain from
// it) and makes them visible to readers, with no sync. The writer then
// hands the batch to a sync goroutine and runs the next batch, while that
// goroutine fdatasyncs the WAL through a descriptor of its own and only
// then answers the batch's callers. One sync runs at a time, and the
// writer hands a batch over once the sync before it finished: each sync
// overlaps the next batch, and a caller is answered only by a sync that
// began after its COMMIT returned. The check that the file is still the
// one opened, and with a zero ForgetWithin the checkpoint after a batch
// that scrubbed, still come before the answer.
//
// Power loss before batch N's sync finished: no caller of N was answered
// and no read returned anything of N (below). SQLite's recovery keeps the
// WAL's longest prefix of frames that carry the header's salt and a valid
// checksum chain, up to its last commit frame, so N and the batches after
// it survive whole or not at all, and every batch answered before N
// survives: its frames precede N's and were synced. Power loss after the
// sync: N's frames are on the disk (fdatasync also writes the file size;
// the WAL's directory entry was synced when Open opened it).
//
// Checkpoints copy WAL frames into the database file. SQLite (with NORMAL
// as with FULL) syncs the WAL before it copies, and when it copied every
// frame it syncs the database file before recording so (nBackfill); only
// then may the WAL be truncated (personad's TRUNCATE checkpoints) or reset
// (below). So no frame leaves the WAL before its page is durable in the
// database file.
//
// WAL reset: after a checkpoint copied the whole WAL, the next commit
// writes the WAL again from its start, under a new salt. SQLite writes the
// new header and syncs it before the first frame (also with NORMAL); the
// old frames beyond the new ones keep the old salt, so recovery stops at
// them; what the new frames overwrite is already in the synced database
// file; and the new frames are covered by the writer's fdatasync like any
// others. On the default unix VFS (powersafe overwrite) SQLite does not
// pad commits to a sector with FULL either, so the frames on the disk are
// the same in both modes.
//
// Readers: a read-only connection sees a batch as soon as its COMMIT
// returned, before its sync. Every read of the store (the query API, the
// change feed and its long polls and pushes, lookups, counts, the audit
// head, Verify) runs its statement through one method that, once the
// statement's snapshot is taken, waits until the syncs have covered every
// commit the writer had begun by then (a counter it raises before each
// COMMIT), which takes at most the sync in flight and the one after it.
// So nothing a read
// returns, a change feed seq above all, can vanish on power loss and be
// handed out again; and the engine publishes a change only after Update
// returned. Another process reading the file (personad inquiry beside a
// running serve) is not gated: it may see a batch one sync early.
//
// A failed fdatasync fails its batches' callers with engine.ErrUnavailable.
// The kernel may then have dropped the WAL pages it could not write while
// SQLite and the readers take the commits as done, and no later sync can
// vouch for them: the store refuses every later write, every read that may
// see such a commit, and its health check, and Close does not checkpoint;
// opening the file again recovers what the disk holds.
//
// A process crash (SIGKILL) loses nothing that was answered in either
// mode: the frames are in the kernel's page cache. With Synchronous
// "normal" there is no sync goroutine and no gate: a batch is answered at
// its COMMIT, and power loss may lose the last answered batches.
package store
