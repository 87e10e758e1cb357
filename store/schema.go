package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/personad/personad/engine"
)

// migrationFiles holds the schema, one numbered file per version:
// migrations/0001_init.sql is version 1. PRAGMA user_version records the
// version a database is at.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationSteps are the parts of a migration that SQL cannot do: the step
// of version v runs after migrations/v's script, in the same transaction.
var migrationSteps = map[int]func(context.Context, *sql.Tx, Options) error{
	2: func(ctx context.Context, tx *sql.Tx, _ Options) error { return relateEvents(ctx, tx) },
	4: func(ctx context.Context, tx *sql.Tx, o Options) error {
		if err := linkExisting(ctx, tx, o.Policy); err != nil {
			return err
		}
		return chainExisting(ctx, tx)
	},
	5:                    func(ctx context.Context, tx *sql.Tx, o Options) error { return refoldExisting(ctx, tx, o.Policy) },
	lookupColumnsVersion: func(ctx context.Context, tx *sql.Tx, _ Options) error { return fillLookupColumns(ctx, tx) },
	bodiesEncodedVersion: func(ctx context.Context, tx *sql.Tx, _ Options) error { return encodeExisting(ctx, tx) },
}

// lookupColumnsVersion is the schema version that gave the inquiries
// table its reference_id, account_id, template_id and created_at columns
// (migrations/0006_lookup_columns.sql), which the listings by user,
// account and template read.
const lookupColumnsVersion = 6

// fillLookupColumns is the Go step of lookupColumnsVersion: it fills in
// the lookup columns of every projection stored before it from its doc,
// as SaveInquiry writes them, a page of projections at a time so that a
// large file needs no more memory than a page.
func fillLookupColumns(ctx context.Context, sqlTx *sql.Tx) error {
	type columns struct {
		id                           string
		reference, account, template any
		created                      int64
	}
	for after := ""; ; {
		rows, err := sqlTx.QueryContext(ctx, `SELECT id, doc FROM inquiries WHERE id > ? ORDER BY id LIMIT 1000`, after)
		if err != nil {
			return err
		}
		var page []columns
		for rows.Next() {
			var doc []byte
			if err := rows.Scan(&after, &doc); err != nil {
				rows.Close()
				return err
			}
			inq, err := decodeInquiry(doc)
			if err != nil {
				rows.Close()
				return fmt.Errorf("projection of inquiry %s: %w", after, err)
			}
			page = append(page, columns{after, nullString(inq.ReferenceID), nullString(inq.AccountID),
				nullString(inq.TemplateID), inq.ListedAt(true).UnixMilli()})
		}
		if err := closeRows(rows, "read projections"); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, c := range page {
			if _, err := sqlTx.ExecContext(ctx, `UPDATE inquiries SET reference_id = ?, account_id = ?,
				template_id = ?, created_at = ? WHERE id = ?`, c.reference, c.account, c.template, c.created, c.id); err != nil {
				return err
			}
		}
	}
}

// refoldExisting is the Go step of schema version 5: it folds every
// inquiry again, as Rebuild does, with the policy the file records (or p
// when it records none), and replaces the projections that differ. Before
// version 5 a projection kept its times to the millisecond, so one whose
// events carried finer created-ats reads back differently, and one that a
// restart or a cache eviction made fold two events less than a
// millisecond apart in arrival order is set right; a change moves the
// feed as a rebuild's does.
func refoldExisting(ctx context.Context, sqlTx *sql.Tx, p engine.Policy) error {
	var v int64
	switch err := sqlTx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, settingAutoDecide).Scan(&v); {
	case err == nil:
		p = engine.Policy{AutoDecide: v != 0}
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	var rep RebuildReport
	return rebuild(&tx{sql: sqlTx, cache: newProjections(), noLookupColumns: true, noSource: true, rawBodies: true}, p, time.Now(), &rep)
}

// relateEvents fills in related_inquiry_id for the events stored before
// version 2, reading each body as the engine does, and scrubs in the same
// write those that belong to an inquiry redacted already: before version
// 2, redacting an inquiry left its verifications, reports and sessions as
// received. Every stored body parsed when it arrived; one that no longer
// does names no inquiry personad could find, and is left as it is.
func relateEvents(ctx context.Context, tx *sql.Tx) error {
	redacted, err := redactedInquiries(ctx, tx)
	if err != nil {
		return err
	}
	type relation struct {
		seq     int64
		inquiry string
		body    []byte // scrubbed, or nil when the inquiry is not redacted
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, body FROM events WHERE object_type != 'inquiry'`)
	if err != nil {
		return err
	}
	var found []relation
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			rows.Close()
			return err
		}
		ev, err := engine.Parse(body)
		if err != nil || ev.RelatedInquiryID == "" {
			continue
		}
		r := relation{seq: seq, inquiry: ev.RelatedInquiryID}
		if redacted[r.inquiry] {
			if r.body, err = engine.Scrub(body); err != nil {
				rows.Close()
				return fmt.Errorf("scrub event #%d: %w", seq, err)
			}
		}
		found = append(found, r)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range found {
		// COALESCE keeps the stored body of an inquiry not redacted, so
		// that only the scrubbed bodies are held in memory.
		if _, err := tx.ExecContext(ctx, `UPDATE events SET related_inquiry_id = ?, body = COALESCE(?, body) WHERE seq = ?`,
			r.inquiry, r.body, r.seq); err != nil {
			return err
		}
	}
	return nil
}

// redactedInquiries returns the ids of the redacted inquiries.
func redactedInquiries(ctx context.Context, tx *sql.Tx) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM inquiries WHERE redacted`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// applicationID marks a SQLite file as personad's ("pers").
const applicationID = 0x70657273

// migrations returns the migration scripts in version order.
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	scripts := make([]string, len(names))
	for _, name := range names {
		n, _, _ := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 || v > len(names) || scripts[v-1] != "" {
			return nil, fmt.Errorf("store: migration %s is misnumbered", name)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		scripts[v-1] = string(b)
	}
	return scripts, nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int {
	m, _ := migrations()
	return len(m)
}

// header is what a file says about itself.
type header struct {
	version, appID, objects int
}

func readHeader(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (header, error) {
	var h header
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT user_version FROM pragma_user_version),
		(SELECT application_id FROM pragma_application_id),
		(SELECT count(*) FROM sqlite_schema)`).Scan(&h.version, &h.appID, &h.objects)
	return h, err
}

// check says whether a file at header h is usable by this build, which
// knows schema versions up to latest.
func (h header) check(path string, latest int) error {
	switch {
	case h.version > latest:
		return fmt.Errorf("store: %s: %w: the file is at schema version %d, this personad knows versions up to %d; upgrade personad",
			path, ErrNewerSchema, h.version, latest)
	case h.version == 0 && h.objects > 0:
		return fmt.Errorf("store: %s: %w: it holds %d tables or indexes of another application and no personad schema version", path, ErrNotPersonad, h.objects)
	case h.version > 0 && h.appID != applicationID:
		return fmt.Errorf("store: %s: %w: application_id is %#x, want %#x", path, ErrNotPersonad, h.appID, applicationID)
	}
	return nil
}

// prepareSchema checks an opened file and migrates it to the latest
// schema in one IMMEDIATE transaction, which also proves that no other
// process holds the write lock.
func prepareSchema(db *sql.DB, path string, o Options) error {
	ctx := context.Background()
	scripts, err := migrations()
	if err != nil {
		return err
	}
	h, err := readHeader(ctx, db)
	if err != nil {
		return openError(path, err)
	}
	if err := h.check(path, len(scripts)); err != nil {
		return err
	}
	if err := quickCheck(ctx, db, path); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil) // IMMEDIATE: waits at most the busy timeout
	if err != nil {
		return openError(path, err)
	}
	defer tx.Rollback()
	if h, err = readHeader(ctx, tx); err != nil { // another process may have migrated meanwhile
		return openError(path, err)
	}
	if err := h.check(path, len(scripts)); err != nil {
		return err
	}
	for v := h.version + 1; v <= len(scripts); v++ {
		if _, err := tx.ExecContext(ctx, scripts[v-1]); err != nil {
			return fmt.Errorf("store: %s: migration to schema version %d: %w", path, v, err)
		}
		if step := migrationSteps[v]; step != nil {
			if err := step(ctx, tx, o); err != nil {
				return fmt.Errorf("store: %s: migration to schema version %d: %w", path, v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", v, applicationID)); err != nil {
			return fmt.Errorf("store: %s: migration to schema version %d: %w", path, v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return openError(path, err)
	}
	return nil
}

// quickCheck runs SQLite's quick_check and reports the first problems.
func quickCheck(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check(5)")
	if err != nil {
		return openError(path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return openError(path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return openError(path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: %s: %w: %s; restore it from a backup", path, ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// checkReadable makes sure a read-only pool looks at a personad database
// at exactly this build's schema version.
func checkReadable(db *sql.DB, path string) error {
	h, err := readHeader(context.Background(), db)
	if err != nil {
		return openError(path, err)
	}
	latest := SchemaVersion()
	if err := h.check(path, latest); err != nil {
		return err
	}
	switch {
	case h.version == 0:
		return fmt.Errorf("store: %s: %w: the file has no personad schema", path, ErrNotPersonad)
	case h.version < latest:
		return fmt.Errorf("store: %s: schema version %d is older than this personad's %d; open it once with the server to migrate it",
			path, h.version, latest)
	}
	return nil
}
