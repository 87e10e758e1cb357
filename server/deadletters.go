package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/personad/personad/engine"
)

// DefaultDeadLettersLimit is the page size of GET /v1/dead-letters.
const DefaultDeadLettersLimit = 50

// DeadLetterView is a dead letter as the API and the command line show
// it. The body, only when asked for, is Body when it is UTF-8 text (as
// a body Persona sends is) and BodyBase64 otherwise.
type DeadLetterView struct {
	Seq        int64  `json:"seq"`
	ReceivedAt string `json:"received_at"`
	Reason     string `json:"reason"`
	SHA256     string `json:"sha256"` // of the body as received, hex
	Deliveries int    `json:"deliveries"`
	// Scrubbed: a redaction or retention rewrote the body, which is no
	// longer the body received (its SHA-256 is not SHA256); it cannot
	// be replayed.
	Scrubbed        bool    `json:"scrubbed"`
	ReplayedAt      *string `json:"replayed_at"`
	ReplayedEventID *string `json:"replayed_event_id"`
	Body            *string `json:"body,omitempty"`
	BodyBase64      *string `json:"body_base64,omitempty"`
}

// NewDeadLetterView renders d, with its body when withBody.
func NewDeadLetterView(d engine.DeadLetter, withBody bool) DeadLetterView {
	v := DeadLetterView{
		Seq: d.Seq, ReceivedAt: engine.FormatTime(d.ReceivedAt), Reason: d.Reason,
		SHA256: hex.EncodeToString(d.SHA256[:]), Deliveries: d.Deliveries,
		Scrubbed: !deadLetterIntact(d),
	}
	if d.Replayed() {
		at, id := engine.FormatTime(d.ReplayedAt), d.ReplayedEventID
		v.ReplayedAt, v.ReplayedEventID = &at, &id
	}
	if withBody {
		if utf8.Valid(d.Body) {
			s := string(d.Body)
			v.Body = &s
		} else {
			s := base64.StdEncoding.EncodeToString(d.Body)
			v.BodyBase64 = &s
		}
	}
	return v
}

func deadLetterIntact(d engine.DeadLetter) bool {
	return sha256.Sum256(d.Body) == d.SHA256
}

// listDeadLetters serves GET /v1/dead-letters: the dead letters newest
// first, limit a page, next_cursor the cursor of the next page (null
// after the last); bodies only with include=body, since they hold
// whatever personal data Persona sent.
func (a *api) listDeadLetters(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	v := r.URL.Query()
	limit, err := parseLimit(v.Get("limit"), DefaultDeadLettersLimit, engine.MaxLimit)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	var before int64
	if s := v.Get("cursor"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			badRequest(w, "cursor must be a next_cursor from an earlier page, unchanged")
			return
		}
	}
	withBody := false
	switch v.Get("include") {
	case "":
	case "body":
		withBody = true
	default:
		badRequest(w, "include must be body")
		return
	}
	page, next, err := a.eng.DeadLetters(r.Context(), before, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	views := make([]DeadLetterView, len(page))
	for i, d := range page {
		views[i] = NewDeadLetterView(d, withBody)
	}
	var cursor *string
	if next != 0 {
		s := strconv.FormatInt(next, 10)
		cursor = &s
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": views, "next_cursor": cursor})
}
