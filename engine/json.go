package engine

import (
	"encoding/json"
	"strconv"
	"time"
)

// TimeFormat is RFC 3339 in UTC with milliseconds: how personad writes a
// time that has no digits below the millisecond (FormatTime writes those
// too).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime writes t as personad writes every time: RFC 3339 in UTC with
// at least three fractional digits (TimeFormat), and as many more as t
// has below the millisecond, up to nanoseconds. A created-at Persona sent
// with microseconds is shown, stored and compared with them: a projection
// read back from its stored form folds on exactly as it was folded.
func FormatTime(t time.Time) string { return string(appendTime(nil, t)) }

// appendTime appends FormatTime(t).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	b = t.AppendFormat(b, "2006-01-02T15:04:05.000")
	if sub := t.Nanosecond() % 1e6; sub != 0 {
		var d [6]byte // the nanoseconds below the millisecond
		for i := len(d) - 1; i >= 0; i-- {
			d[i], sub = byte('0'+sub%10), sub/10
		}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, 'Z')
}

// jsonTime writes a time with FormatTime, or null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return appendJSONTime(nil, tt), nil
}

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsonTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	tt, err := time.Parse(time.RFC3339Nano, s)
	*t = jsonTime(tt.UTC())
	return err
}

// jsonString writes "" as null.
type jsonString string

func (s jsonString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

func (s *jsonString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	return json.Unmarshal(b, (*string)(s))
}

type inquiryJSON struct {
	ID          string        `json:"id"`
	Status      jsonString    `json:"status"`
	Decision    jsonString    `json:"decision"`
	Redacted    bool          `json:"redacted"`
	RedactedAt  jsonTime      `json:"redacted_at"`
	ReferenceID jsonString    `json:"reference_id"`
	AccountID   jsonString    `json:"account_id"`
	TemplateID  jsonString    `json:"template_id"`
	Tags        []string      `json:"tags"`
	CreatedAt   jsonTime      `json:"created_at"`
	UpdatedAt   jsonTime      `json:"updated_at"`
	LastEventID jsonString    `json:"last_event_id"`
	EventCount  int           `json:"event_count"`
	Anomalies   []anomalyJSON `json:"anomalies"`
}

type anomalyJSON struct {
	EventID string     `json:"event_id"`
	Kind    string     `json:"kind"`
	From    jsonString `json:"from"`
	To      jsonString `json:"to"`
}

// MarshalJSON writes the projection with the query API's keys: id, status,
// decision, redacted, redacted_at, reference_id, account_id, template_id,
// tags, created_at, updated_at, last_event_id, event_count, anomalies.
// Absent values are null; anomalies is always a list.
//
// It writes exactly what encoding/json writes for inquiryJSON (a test
// holds it to that: stored projections are compared byte for byte), by
// hand, since the writer encodes a projection for every event it stores.
func (inq *Inquiry) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 320+64*len(inq.Anomalies)+16*len(inq.Tags))
	b = append(b, `{"id":`...)
	b = appendJSONString(b, inq.ID)
	b = append(b, `,"status":`...)
	b = appendNullString(b, string(inq.Status))
	b = append(b, `,"decision":`...)
	b = appendNullString(b, string(inq.Decision))
	b = append(b, `,"redacted":`...)
	b = strconv.AppendBool(b, inq.Redacted)
	b = append(b, `,"redacted_at":`...)
	b = appendJSONTime(b, inq.RedactedAt)
	b = append(b, `,"reference_id":`...)
	b = appendNullString(b, inq.ReferenceID)
	b = append(b, `,"account_id":`...)
	b = appendNullString(b, inq.AccountID)
	b = append(b, `,"template_id":`...)
	b = appendNullString(b, inq.TemplateID)
	b = append(b, `,"tags":`...)
	if inq.Tags == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, t := range inq.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, inq.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, inq.UpdatedAt)
	b = append(b, `,"last_event_id":`...)
	b = appendNullString(b, inq.LastEventID)
	b = append(b, `,"event_count":`...)
	b = strconv.AppendInt(b, int64(inq.EventCount), 10)
	b = append(b, `,"anomalies":[`...)
	for i, a := range inq.Anomalies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"event_id":`...)
		b = appendJSONString(b, a.EventID)
		b = append(b, `,"kind":`...)
		b = appendJSONString(b, a.Kind)
		b = append(b, `,"from":`...)
		b = appendNullString(b, string(a.From))
		b = append(b, `,"to":`...)
		b = appendNullString(b, string(a.To))
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as it is, anything else (quotes, backslashes, control bytes,
// <, >, &, non-ASCII) through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendNullString appends s, or null when it is empty (jsonString).
func appendNullString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONTime appends t with FormatTime, or null when zero (jsonTime).
func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = appendTime(b, t)
	return append(b, '"')
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (inq *Inquiry) UnmarshalJSON(b []byte) error {
	var j inquiryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*inq = Inquiry{
		ID: j.ID, Status: Status(j.Status), Decision: Status(j.Decision),
		Redacted: j.Redacted, RedactedAt: time.Time(j.RedactedAt),
		ReferenceID: string(j.ReferenceID), AccountID: string(j.AccountID),
		TemplateID: string(j.TemplateID), Tags: j.Tags,
		CreatedAt: time.Time(j.CreatedAt), UpdatedAt: time.Time(j.UpdatedAt),
		LastEventID: string(j.LastEventID), EventCount: j.EventCount,
	}
	for _, a := range j.Anomalies {
		inq.Anomalies = append(inq.Anomalies, Anomaly{a.EventID, a.Kind, Status(a.From), Status(a.To)})
	}
	return nil
}

type changeJSON struct {
	Seq        int64      `json:"seq"`
	InquiryID  string     `json:"inquiry_id"`
	EventID    string     `json:"event_id"`
	FromStatus jsonString `json:"from_status"`
	ToStatus   jsonString `json:"to_status"`
	Decision   jsonString `json:"decision"`
	Redacted   bool       `json:"redacted"`
	At         jsonTime   `json:"at"`
}

// MarshalJSON writes a change with the feed's keys: seq, inquiry_id,
// event_id, from_status, to_status, decision, redacted, at.
func (c Change) MarshalJSON() ([]byte, error) {
	return json.Marshal(changeJSON{
		c.Seq, c.InquiryID, c.EventID, jsonString(c.FromStatus), jsonString(c.ToStatus),
		jsonString(c.Decision), c.Redacted, jsonTime(c.At),
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (c *Change) UnmarshalJSON(b []byte) error {
	var j changeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Change{j.Seq, j.InquiryID, j.EventID, Status(j.FromStatus), Status(j.ToStatus),
		Status(j.Decision), j.Redacted, time.Time(j.At)}
	return nil
}
