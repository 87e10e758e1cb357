package store

import "github.com/personad/personad/engine"

// The inquiries table has six listing indexes (migrations 0001 and 0006).
// SQLite rewrites an index's entry on UPDATE whenever the statement sets
// one of its columns, changed or not, and each entry is a leaf page of
// its own B-tree written to the WAL. Most events change a projection's
// doc and updated-at but not what the listings by reference, account
// and template sort on, and a late event often not even its updated-at:
// inquiryUpdate picks the UPDATE that sets only the columns that moved.

// byUpdate are the columns of inquiries_by_updated, _by_status and
// _by_decision.
type byUpdate struct {
	status, decision engine.Status
	updatedAt        int64
}

// byKey are the columns of inquiries_by_reference, _by_account and
// _by_template.
type byKey struct {
	reference, account, template string
	createdAt                    int64
}

func listedByUpdate(inq *engine.Inquiry) byUpdate {
	return byUpdate{inq.Status, inq.Decision, inq.UpdatedAt.UnixMilli()}
}

func listedByKey(inq *engine.Inquiry) byKey {
	return byKey{inq.ReferenceID, inq.AccountID, inq.TemplateID, inq.ListedAt(true).UnixMilli()}
}

// inquiryUpdate returns the UPDATE statement of a stored projection,
// which the writer's cache holds as last saved or loaded, that inq
// replaces.
func (t *tx) inquiryUpdate(inq *engine.Inquiry) stmtID {
	prev, _ := t.cache.m.peek(inq.ID)
	switch {
	case prev == nil || listedByKey(prev) != listedByKey(inq):
		return sUpdateInquiry
	case listedByUpdate(prev) != listedByUpdate(inq):
		return sUpdateInquiryByUpdate
	}
	return sUpdateInquiryDoc
}
