package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Store keeps the append-only event log, the inquiry projections and the
// change feed. The engine defines what it needs; package store implements it
// on SQLite, and MemoryStore implements it in memory.
type Store interface {
	// Update runs fn as one atomic unit: everything fn wrote is kept, or,
	// when fn or the commit fails, nothing is. Update returns nil only once
	// the writes are durable. An implementation may run the fns of several
	// concurrent callers in one transaction (group commit), as long as each
	// caller's writes stand or fall on their own when its fn fails. fn may
	// run more than once (a store may roll a batch back and run it again),
	// so it must do nothing outside tx that it does not redo from scratch.
	// When ctx ends while the commit is under way (a stalled disk), Update
	// may return an error matching ErrUnavailable without waiting for it:
	// the unit may still be kept, so a caller retries idempotently, as a
	// redelivery of an event does.
	Update(ctx context.Context, fn func(Tx) error) error
	Reader
}

// BodyEncoder is what a Store that keeps bodies in its own form (package
// store compresses them) may implement, so that the engine encodes a
// delivery's body in the delivering goroutine, beside its SHA-256, and
// not inside Update, whose units a group-committing store runs one after
// the other. The engine hands the result to AppendEvent as
// Record.EncodedBody.
type BodyEncoder interface {
	// EncodeBody returns body in the store's form. It must be safe for
	// concurrent use and must not keep body.
	EncodeBody(body []byte) []byte
}

// Tx is the view of the store inside one Update.
type Tx interface {
	// RecordDelivery notes another delivery of an already stored event,
	// whose body this time has SHA-256 sum, and says what the log holds
	// under the id. Nothing is written when no event with the id is
	// stored (Seen is false) or when the stored body's SHA-256 is not sum
	// (Conflict, with the stored body: the caller decides whether it says
	// the same in other words, and counts it by calling again with the
	// stored SHA-256, or keeps it with AppendConflict).
	RecordDelivery(eventID string, attemptsMade int, sum [32]byte) (Redelivery, error)
	// AppendConflict keeps a body that arrived under the id of an event
	// stored with another body (RecordDelivery's Conflict), once per event
	// id and SHA-256: the same body again counts another delivery of the
	// conflict kept, and reports duplicate. It sets c.Seq.
	AppendConflict(c *Conflict) (duplicate bool, err error)
	// AppendEvent adds a new event to the log and sets rec.Seq.
	AppendEvent(rec *Record) error
	// InquiryEvents returns every stored event of an inquiry.
	InquiryEvents(inquiryID string) ([]Record, error)
	// Inquiry returns an inquiry's projection, or nil when there is none.
	Inquiry(inquiryID string) (*Inquiry, error)
	// SaveInquiry creates or replaces an inquiry's projection.
	SaveInquiry(inq *Inquiry) error
	// AppendChange adds a change to the feed and sets c.Seq.
	AppendChange(c *Change) error
	// AddLinks records that each link's Object belongs to its Owner and
	// returns those it did not know were stored already: every new link,
	// and maybe some known ones (a store may answer from a cache).
	AddLinks(links []Link) (unknown []Link, err error)
	// Forgetting returns how much of an object's data must be forgotten:
	// the mode Forget gave it, or ForgetNone. Every delivery asks it, for
	// its object and each owner its links name: it should answer a miss
	// without I/O.
	Forgetting(id string) (Forget, error)
	// Forget raises the forget mode of id, and of every object that
	// belongs to it (transitively) through AddLinks' links and the Parts
	// of stored events, to at least mode. It returns the objects whose
	// mode rose; it rewrites nothing.
	Forget(id string, mode Forget) ([]Forgotten, error)
	// ReplaceBodies rewrites the stored body of every event whose object
	// is one of ids with rewrite(body), keeping each body's SHA-256 as
	// received, and the body of every conflict whose ObjectID or
	// BodyObjectID is one of ids.
	ReplaceBodies(ids []string, rewrite func([]byte) ([]byte, error)) error
	// ReplaceDeadLetters rewrites, with rewrite, every dead letter that
	// names one of ids (one of its IDWords is the id), keeping its SHA-256.
	ReplaceDeadLetters(ids []string, rewrite func([]byte) ([]byte, error)) error
	// AppendDeadLetter keeps an authentic body that could not be parsed,
	// once per SHA-256: the same body again counts another delivery of
	// the dead letter kept, and reports duplicate.
	AppendDeadLetter(d *DeadLetter) (duplicate bool, err error)
	// MarkDeadLetterReplayed records that the dead letter seq was
	// ingested again, at at, as the event eventID. Errors: one matching
	// ErrNotFound when there is no such dead letter, ErrAlreadyReplayed
	// when it was marked before (a dead letter is replayed once).
	MarkDeadLetterReplayed(seq int64, at time.Time, eventID string) error
	// SetDrift keeps d as the one drift of d.InquiryID, replacing the
	// drift kept before, if any.
	SetDrift(d *Drift) error
	// ClearDrift forgets the drift of an inquiry; it does nothing when
	// none is kept.
	ClearDrift(inquiryID string) error
}

// Reader answers the queries an application asks. Reads never wait for
// the writer.
type Reader interface {
	// GetInquiry returns a projection, or an error matching ErrNotFound.
	GetInquiry(ctx context.Context, id string) (*Inquiry, error)
	// Events returns an inquiry's stored events (any order).
	Events(ctx context.Context, inquiryID string) ([]Record, error)
	// RelatedEvents returns the stored events about other objects that
	// belong to an inquiry (RelatedInquiryID), in log order.
	RelatedEvents(ctx context.Context, inquiryID string) ([]Record, error)
	// Inquiries lists the projections q matches newest first by
	// Inquiry.ListedAt(q.ByCreated()) at the millisecond (ties by id,
	// descending) and the cursor of the next page, "" after the last. It
	// checks q with Query.Normalize and returns its ErrInvalid.
	Inquiries(ctx context.Context, q Query) (page []*Inquiry, next string, err error)
	// Changes returns at most limit changes with Seq > after, in Seq order.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// DeadLetterPage returns at most limit dead letters with Seq < before
	// (any Seq when before is 0), newest first.
	DeadLetterPage(ctx context.Context, before int64, limit int) ([]DeadLetter, error)
	// GetDeadLetter returns one dead letter, or an error matching
	// ErrNotFound.
	GetDeadLetter(ctx context.Context, seq int64) (*DeadLetter, error)
	// Drifts returns the drifts kept for those of ids that have one, by
	// inquiry id; an id with none, or of no inquiry, is left out.
	Drifts(ctx context.Context, ids []string) (map[string]Drift, error)
}

// Errors the engine and stores return; servers map them to status codes.
var (
	// ErrNotFound: no such inquiry.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable wraps a store failure: nothing was stored and the
	// sender should retry (HTTP 503).
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalid: a query argument (or another argument a caller gives)
	// is out of range or malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrAlreadyReplayed: the dead letter was replayed before.
	ErrAlreadyReplayed = errors.New("dead letter already replayed")
	// ErrScrubbed: the dead letter's body is no longer the body received
	// (a redaction or retention scrubbed it), so it cannot be replayed.
	ErrScrubbed = errors.New("dead letter body scrubbed")
)

// Where an event came from (Record.Source, Delivery.Source).
const (
	// SourceWebhook: Persona delivered it to the webhook endpoint.
	SourceWebhook = "webhook"
	// SourceAPI: personad fetched it from Persona's Events API
	// (reconciliation), having missed its delivery.
	SourceAPI = "api"
)

// Record is one event as the log keeps it.
type Record struct {
	Seq        int64 // position in the log, assigned by the store
	EventID    string
	Name       string
	ObjectType string
	ObjectID   string
	// RelatedInquiryID is the inquiry a non-inquiry event belongs to
	// (Event.RelatedInquiryID), or "".
	RelatedInquiryID string
	// CreatedAt is the body's created-at. A store may keep it coarser
	// (SQLite keeps unix milliseconds); everything that orders events
	// reads the body, at the precision Persona sent.
	CreatedAt    time.Time
	ReceivedAt   time.Time // first delivery
	AttemptsMade int       // highest Persona-Webhook-Attempts-Made seen
	Deliveries   int       // how many times it was delivered
	Body         []byte    // as received, or scrubbed once its inquiry was redacted
	SHA256       [32]byte  // of the body as received
	// EncodedBody is Body in the store's form (BodyEncoder), when the
	// engine encoded it ahead of Update; nil when it did not (the store
	// is no BodyEncoder, or a redaction scrubbed Body inside the unit), in
	// which case a store that encodes does it in AppendEvent. Stores
	// neither read it back nor keep it in what they return.
	EncodedBody []byte
	// Parts are the objects an inquiry event lists as the inquiry's own
	// (Event.Parts): they belong to it. Stored with the event, so that
	// the links an inquiry's every event repeats cost no other write.
	Parts   []string
	Outcome Outcome // as first acknowledged; History re-derives the fold's
	// Conflicted says that another body arrived under the event's id
	// after it was stored (a Conflict is kept): its fold notes an
	// AnomalyConflictingRedelivery. The store derives it from its
	// conflicts; AppendEvent ignores it.
	Conflicted bool
	// Source is how the event first arrived: SourceWebhook or SourceAPI.
	// A later delivery by the other path does not change it. It is not
	// part of the hash chain, which covers what Persona sent.
	Source string
	// Event is Body parsed, as the engine folded it, when the engine
	// appends the record: a store that implements HistoryTx may keep it
	// so that a re-fold parses nothing. It is never stored, and records
	// a store returns leave it nil.
	Event *Event
}

// HistoryTx is a Tx that can return an inquiry's stored log already
// parsed. The engine re-folds through it when the Tx implements it, and
// through InquiryEvents and Parse otherwise.
type HistoryTx interface {
	Tx
	// InquiryHistory returns the events of every stored record of the
	// inquiry, in seq order, as ParseRecords parses InquiryEvents'
	// records: the body as stored now (scrubbed, once it was), Conflicted
	// as the store says. The slice is the caller's; the events may be
	// shared, and nobody may modify them.
	InquiryHistory(inquiryID string) ([]*Event, error)
}

// Redelivery is what RecordDelivery found under an event id.
type Redelivery struct {
	Seen    bool    // an event with the id is stored
	Outcome Outcome // the outcome it was first acknowledged with
	// Conflict: the stored body's SHA-256 is not the delivered one's.
	// SHA256 is the stored one and Body the body stored (maybe scrubbed).
	Conflict bool
	SHA256   [32]byte
	Body     []byte
	// The stored event's object: its fold is the one that notes the
	// conflict, when it is an inquiry.
	ObjectType, ObjectID string
}

// Conflict is a body that arrived under the id of a stored event but is
// not the body stored: Persona's word for the event is its first body,
// and the other is kept beside it so that nothing authentic is lost.
type Conflict struct {
	Seq          int64
	EventID      string
	ObjectID     string    // the stored event's object
	BodyObjectID string    // the object this body is about (it may name another)
	ReceivedAt   time.Time // its first delivery
	SHA256       [32]byte  // of the body as received
	Body         []byte    // as received, or scrubbed as its objects are forgotten
	Deliveries   int       // how many times this body was delivered
}

// Change is one real change of an inquiry's status, decision or redacted
// flag, in the order the feed's consumers read them.
type Change struct {
	Seq        int64 // cursor, assigned by the store, strictly increasing
	InquiryID  string
	EventID    string // the event whose arrival caused it
	FromStatus Status
	ToStatus   Status
	Decision   Status
	Redacted   bool
	At         time.Time // when personad recorded it
}

// DeadLetter is an authentic body personad could not parse, kept so that
// nothing authentic is lost.
type DeadLetter struct {
	Seq        int64
	ReceivedAt time.Time
	Body       []byte
	SHA256     [32]byte
	Reason     string
	Deliveries int // how many times it was delivered
	// ReplayedAt and ReplayedEventID say when Engine.Replay ingested it
	// again, and as which event; zero until then.
	ReplayedAt      time.Time
	ReplayedEventID string
}

// Drift says that Persona's API, asked for an inquiry's current status,
// answered another status than personad's projection holds: events are
// missing from the log that reconciliation could not fetch, or Persona
// changed the inquiry without an event. An inquiry has at most one.
type Drift struct {
	InquiryID string
	// Status is the projection's status when it was checked; the drift
	// is shown only while the projection still has it.
	Status        Status
	PersonaStatus Status // what Persona's API answered
	// CheckedAt is when it was checked. A store may keep it coarser
	// (SQLite keeps unix milliseconds).
	CheckedAt time.Time
}

// Replayed reports whether the dead letter was ingested again.
func (d *DeadLetter) Replayed() bool { return d.ReplayedEventID != "" }

// Query selects inquiries for a listing. Zero values select everything.
type Query struct {
	Status   Status
	Decision Status
	Redacted *bool
	// ReferenceID, AccountID and TemplateID select the inquiries of one
	// user (the application's own id, Persona's reference-id), one
	// Persona account or one template. With any of them the listing is
	// newest created first (see ByCreated). A forgotten reference-id (an
	// account redaction nulls it) matches no ReferenceID.
	ReferenceID string
	AccountID   string
	TemplateID  string
	Limit       int    // 1..MaxLimit; 0 means DefaultLimit
	Cursor      string // from a previous page of a listing in the same order
}

// ByCreated reports whether q lists newest created first (Inquiry.ListedAt
// with created set): it selects by user, account or template, whose
// newest inquiry is the one started last, however recently an older one
// changed. Other listings are newest updated first.
func (q Query) ByCreated() bool {
	return q.ReferenceID != "" || q.AccountID != "" || q.TemplateID != ""
}

// ListedAt is the instant inq sorts at in a listing: its UpdatedAt, or,
// with created, its CreatedAt (its UpdatedAt while no event showed the
// inquiry's created-at). Listings sort at its millisecond, as cursors
// carry it.
func (inq *Inquiry) ListedAt(created bool) time.Time {
	if created && !inq.CreatedAt.IsZero() {
		return inq.CreatedAt
	}
	return inq.UpdatedAt
}

// Listing limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Cursor is a position in a listing order: after the inquiry listed at At
// (Inquiry.ListedAt) with id ID.
type Cursor struct {
	ByCreated bool // a position in a newest created first listing
	At        time.Time
	ID        string
}

// createdPrefix marks the cursors of newest created first listings; a
// cursor without it (as every cursor before such listings existed) is a
// position in the newest updated first order.
const createdPrefix = "c"

// Encode returns the opaque form handed to clients.
func (c Cursor) Encode() string {
	raw := strconv.FormatInt(c.At.UnixMilli(), 10) + "/" + c.ID
	if c.ByCreated {
		raw = createdPrefix + raw
	}
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, errors.Join(ErrInvalid, errors.New("malformed cursor"))
	}
	text, created := strings.CutPrefix(string(raw), createdPrefix)
	ms, id, ok := strings.Cut(text, "/")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, errors.Join(ErrInvalid, errors.New("malformed cursor"))
	}
	return Cursor{ByCreated: created, At: time.UnixMilli(n).UTC(), ID: id}, nil
}

// CursorAfter returns the cursor of the page after one that ended with
// last, in q's order.
func (q Query) CursorAfter(last *Inquiry) string {
	return Cursor{ByCreated: q.ByCreated(), At: last.ListedAt(q.ByCreated()), ID: last.ID}.Encode()
}

// Normalize checks q and fills in the default limit.
func (q Query) Normalize() (Query, error) {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return q, errors.Join(ErrInvalid, errors.New("limit must be between 1 and "+strconv.Itoa(MaxLimit)))
	}
	if q.Status != "" && !q.Status.Known() {
		return q, errors.Join(ErrInvalid, errors.New("unknown status "+quoteShort(string(q.Status))))
	}
	if q.Decision != "" && decide(q.Decision, Policy{}) != q.Decision {
		return q, errors.Join(ErrInvalid, errors.New("decision must be approved, declined or needs_review"))
	}
	if q.Cursor != "" {
		c, err := DecodeCursor(q.Cursor)
		if err != nil {
			return q, err
		}
		if c.ByCreated != q.ByCreated() {
			// Read in the other order, it would skip and repeat inquiries.
			return q, errors.Join(ErrInvalid, errors.New("the cursor belongs to a listing in another order: "+
				"one with reference_id, account_id or template_id lists newest created first, one without newest updated first"))
		}
	}
	return q, nil
}

// Matches reports whether inq passes q's filters.
func (q Query) Matches(inq *Inquiry) bool {
	return (q.Status == "" || inq.Status == q.Status) &&
		(q.Decision == "" || inq.Decision == q.Decision) &&
		(q.Redacted == nil || inq.Redacted == *q.Redacted) &&
		(q.ReferenceID == "" || inq.ReferenceID == q.ReferenceID) &&
		(q.AccountID == "" || inq.AccountID == q.AccountID) &&
		(q.TemplateID == "" || inq.TemplateID == q.TemplateID)
}
