package notify

import (
	"encoding/json"

	"github.com/personad/personad/engine"
)

// EventType is the type of every message personad pushes.
const EventType = "inquiry.changed"

// Message is the body of one pushed change: the Standard Webhooks
// envelope (type, timestamp, data) around the change and the inquiry's
// projection.
type Message struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"` // when personad recorded the change, RFC 3339
	Data      Data   `json:"data"`
}

// Data is a Message's change: the change feed's item, the inquiry's
// reference id, and its projection as it is when the message is sent
// (which, when later changes happened already, is after those too).
type Data struct {
	Seq         int64           `json:"seq"`
	InquiryID   string          `json:"inquiry_id"`
	EventID     string          `json:"event_id"`
	FromStatus  *string         `json:"from_status"`
	ToStatus    *string         `json:"to_status"`
	Decision    *string         `json:"decision"`
	Redacted    bool            `json:"redacted"`
	ReferenceID *string         `json:"reference_id"`
	Inquiry     *engine.Inquiry `json:"inquiry"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// NewMessage returns the message for change c, with inq (nil when the
// inquiry has no projection) as the projection.
func NewMessage(c engine.Change, inq *engine.Inquiry) Message {
	m := Message{Type: EventType, Timestamp: engine.FormatTime(c.At), Data: Data{
		Seq: c.Seq, InquiryID: c.InquiryID, EventID: c.EventID,
		FromStatus: optional(string(c.FromStatus)), ToStatus: optional(string(c.ToStatus)),
		Decision: optional(string(c.Decision)), Redacted: c.Redacted, Inquiry: inq,
	}}
	if inq != nil {
		m.Data.ReferenceID = optional(inq.ReferenceID)
	}
	return m
}

// encode returns the message's JSON body.
func (m Message) encode() ([]byte, error) { return json.Marshal(m) }
