package store

import (
	"database/sql"
	"fmt"
)

// lookupColumns are a projection's columns that GET /v1/inquiries?
// reference_id= (and account_id=, template_id=) reads: copies of its doc,
// written with it by SaveInquiry.
type lookupColumns struct {
	reference, account, template sql.NullString
	created                      int64
}

// lookupColumnsOf returns the lookup columns a projection's doc makes.
func lookupColumnsOf(doc []byte) (lookupColumns, error) {
	inq, err := decodeInquiry(doc)
	if err != nil {
		return lookupColumns{}, err
	}
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
	return lookupColumns{str(inq.ReferenceID), str(inq.AccountID), str(inq.TemplateID), inq.ListedAt(true).UnixMilli()}, nil
}

// lookupDrift returns, in id order, the projections whose lookup columns
// are not what their doc says: edited behind personad's back, or written
// by a bug. A lookup by reference id reads the columns, not the doc, so a
// stale column could find a user whose reference id was forgotten, or
// miss one; verify reports them and rebuild writes them again.
func lookupDrift(q *sql.Tx) (map[string]lookupColumns, []string, error) {
	rows, err := q.Query(`SELECT id, doc, reference_id, account_id, template_id, created_at FROM inquiries ORDER BY id`)
	if err != nil {
		return nil, nil, unavailable("read lookup columns", err)
	}
	want := map[string]lookupColumns{}
	var ids []string
	for rows.Next() {
		var (
			id      string
			doc     []byte
			got     lookupColumns
			created sql.NullInt64
		)
		if err := rows.Scan(&id, &doc, &got.reference, &got.account, &got.template, &created); err != nil {
			rows.Close()
			return nil, nil, unavailable("read lookup columns", err)
		}
		got.created = created.Int64
		w, err := lookupColumnsOf(doc)
		if err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("store: projection of inquiry %s: %w", id, err)
		}
		if got != w || !created.Valid {
			want[id] = w
			ids = append(ids, id)
		}
	}
	if err := closeRows(rows, "read lookup columns"); err != nil {
		return nil, nil, err
	}
	return want, ids, nil
}

// relist writes the lookup columns of the projections lookupDrift found.
func relist(q *sql.Tx, want map[string]lookupColumns) error {
	for id, c := range want {
		if _, err := q.Exec(`UPDATE inquiries SET reference_id = ?, account_id = ?, template_id = ?, created_at = ? WHERE id = ?`,
			c.reference, c.account, c.template, c.created, id); err != nil {
			return unavailable("write lookup columns", err)
		}
	}
	return nil
}
