package engine

import (
	"encoding/json"
	"time"
)

// TimeFormat is how personad writes times: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// jsonTime writes a time in TimeFormat, or null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(TimeFormat) + `"`), nil
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
func (inq *Inquiry) MarshalJSON() ([]byte, error) {
	j := inquiryJSON{
		ID: inq.ID, Status: jsonString(inq.Status), Decision: jsonString(inq.Decision),
		Redacted: inq.Redacted, RedactedAt: jsonTime(inq.RedactedAt),
		ReferenceID: jsonString(inq.ReferenceID), AccountID: jsonString(inq.AccountID),
		TemplateID: jsonString(inq.TemplateID), Tags: inq.Tags,
		CreatedAt: jsonTime(inq.CreatedAt), UpdatedAt: jsonTime(inq.UpdatedAt),
		LastEventID: jsonString(inq.LastEventID), EventCount: inq.EventCount,
		Anomalies: make([]anomalyJSON, len(inq.Anomalies)),
	}
	for i, a := range inq.Anomalies {
		j.Anomalies[i] = anomalyJSON{a.EventID, a.Kind, jsonString(a.From), jsonString(a.To)}
	}
	return json.Marshal(j)
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
