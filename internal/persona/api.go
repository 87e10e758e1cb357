package persona

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Event is one item of the Events API: exactly the object a webhook carries
// as its body's "data".
type Event struct {
	// ID is the event id (evt_…), also the paging cursor.
	ID string
	// Name is the event name, e.g. "inquiry.approved".
	Name string
	// Raw is the item's bytes as Persona sent them, so the caller can ingest
	// {"data": Raw} exactly as it would a webhook body.
	Raw json.RawMessage
}

// EventsPage is one page of events, newest first.
type EventsPage struct {
	// Events holds up to PageSize events.
	Events []Event
	// Next is the cursor for the following (older) page, "" on the last page.
	Next string
}

// Inquiry is one item of the inquiries list.
type Inquiry struct {
	// ID is the inquiry id (inq_…).
	ID string
	// Status is attributes.status, e.g. "completed".
	Status string
	// CreatedAt is attributes.created-at; zero when absent or unparsable.
	CreatedAt time.Time
	// Raw is the item's bytes as Persona sent them.
	Raw json.RawMessage
}

// InquiriesPage is one page of inquiries, newest first.
type InquiriesPage struct {
	// Inquiries holds up to PageSize inquiries.
	Inquiries []Inquiry
	// Next is the cursor for the following page, "" on the last page.
	Next string
}

// listBody is the JSON:API envelope of a list answer.
type listBody struct {
	Data  []json.RawMessage `json:"data"`
	Links struct {
		Next *string `json:"next"`
	} `json:"links"`
}

// item is the part of a JSON:API resource the client reads.
type item struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		Name      string `json:"name"`
		Status    string `json:"status"`
		CreatedAt string `json:"created-at"`
	} `json:"attributes"`
}

// ListEvents returns one page of the events of objectID (an inquiry id, for
// example), newest first; after is "" for the first page, then the previous
// page's Next. Errors: *Error (ErrNotFound for 404), a network error after
// retries, ctx's error, or a malformed answer.
func (c *Client) ListEvents(ctx context.Context, objectID, after string) (EventsPage, error) {
	if objectID == "" {
		return EventsPage{}, errors.New("persona: ListEvents needs an object id")
	}
	q := url.Values{}
	q.Set("filter[object-id]", objectID)
	q.Set("page[size]", strconv.Itoa(PageSize))
	if after != "" {
		q.Set("page[after]", after)
	}
	items, next, err := c.list(ctx, "/api/v1/events", q)
	if err != nil {
		return EventsPage{}, err
	}
	page := EventsPage{Next: next, Events: make([]Event, 0, len(items))}
	for _, it := range items {
		page.Events = append(page.Events, Event{ID: it.parsed.ID, Name: it.parsed.Attributes.Name, Raw: it.raw})
	}
	return page, nil
}

// ListInquiries returns one page of the inquiries created at or after
// createdAfter, newest first; after is "" for the first page, then the
// previous page's Next. Errors as ListEvents.
func (c *Client) ListInquiries(ctx context.Context, createdAfter time.Time, after string) (InquiriesPage, error) {
	q := url.Values{}
	if !createdAfter.IsZero() {
		q.Set("filter[created-at-start]", createdAfter.UTC().Format(time.RFC3339))
	}
	q.Set("page[size]", strconv.Itoa(PageSize))
	if after != "" {
		q.Set("page[after]", after)
	}
	items, next, err := c.list(ctx, "/api/v1/inquiries", q)
	if err != nil {
		return InquiriesPage{}, err
	}
	page := InquiriesPage{Next: next, Inquiries: make([]Inquiry, 0, len(items))}
	for _, it := range items {
		inq := Inquiry{ID: it.parsed.ID, Status: it.parsed.Attributes.Status, Raw: it.raw}
		if t, err := time.Parse(time.RFC3339Nano, it.parsed.Attributes.CreatedAt); err == nil {
			inq.CreatedAt = t
		}
		page.Inquiries = append(page.Inquiries, inq)
	}
	return page, nil
}

// GetInquiry returns the current status of inquiry id and the raw bytes of
// the answer's "data" object. Errors: *Error (errors.Is ErrNotFound for an
// unknown id), a network error after retries, ctx's error, or a malformed
// answer.
func (c *Client) GetInquiry(ctx context.Context, id string) (status string, raw json.RawMessage, err error) {
	if id == "" || strings.ContainsAny(id, "/?#") {
		return "", nil, fmt.Errorf("persona: invalid inquiry id %q", id)
	}
	path := "/api/v1/inquiries/" + id
	body, err := c.get(ctx, path, nil)
	if err != nil {
		return "", nil, err
	}
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Data) == 0 || doc.Data[0] != '{' {
		return "", nil, fmt.Errorf("persona: GET %s: answer has no data object", path)
	}
	var it item
	if err := json.Unmarshal(doc.Data, &it); err != nil || it.ID == "" {
		return "", nil, fmt.Errorf("persona: GET %s: data object has no id", path)
	}
	if it.ID != id {
		return "", nil, fmt.Errorf("persona: GET %s: answer is for %q", path, it.ID)
	}
	return it.Attributes.Status, doc.Data, nil
}

type listItem struct {
	raw    json.RawMessage
	parsed item
}

// list fetches one page and finds the next cursor: page[after] of links.next,
// or, if links.next is set without one, the last item's id (Persona's cursor
// is the object id).
func (c *Client) list(ctx context.Context, path string, q url.Values) ([]listItem, string, error) {
	body, err := c.get(ctx, path, q)
	if err != nil {
		return nil, "", err
	}
	var doc listBody
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, "", fmt.Errorf("persona: GET %s: answer is not JSON: %w", path, err)
	}
	if doc.Data == nil {
		return nil, "", fmt.Errorf("persona: GET %s: answer has no data array", path)
	}
	items := make([]listItem, 0, len(doc.Data))
	for i, raw := range doc.Data {
		var it item
		if err := json.Unmarshal(raw, &it); err != nil || it.ID == "" {
			return nil, "", fmt.Errorf("persona: GET %s: item %d has no id", path, i)
		}
		items = append(items, listItem{raw: bytes.Clone(raw), parsed: it})
	}
	next := ""
	if doc.Links.Next != nil && *doc.Links.Next != "" && len(items) > 0 {
		if u, err := url.Parse(*doc.Links.Next); err == nil {
			next = u.Query().Get("page[after]")
		}
		if next == "" {
			next = items[len(items)-1].parsed.ID
		}
	}
	return items, next, nil
}

// apiError builds the *Error of a non-2xx answer, with the first entry of
// Persona's {"errors": [{"title", "detail"}]} when present, the key scrubbed.
func (c *Client) apiError(path string, resp *http.Response, body []byte) *Error {
	e := &Error{Method: http.MethodGet, Path: path, StatusCode: resp.StatusCode, RequestID: resp.Header.Get("Request-Id")}
	var doc struct {
		Errors []struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		e.Title = c.scrubText(limitText(doc.Errors[0].Title))
		e.Detail = c.scrubText(limitText(doc.Errors[0].Detail))
	}
	e.RequestID = c.scrubText(limitText(e.RequestID))
	return e
}

func (c *Client) scrubText(s string) string {
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

// limitText keeps error text from Persona short enough for a log line.
func limitText(s string) string {
	const n = 300
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// LoadAPIKey returns the Persona API key from the environment variable
// PERSONA_API_KEY or from file (the -persona-api-key-file flag), trimmed of a
// UTF-8 BOM and surrounding whitespace (CRLF included). It is an error when
// both are set (which one is meant is not ours to guess), when the one set
// is empty, or when the key holds whitespace or control characters (a
// header cannot carry them). The error never contains the key.
func LoadAPIKey(getenv func(string) string, file string) (string, error) {
	env := ""
	if getenv != nil {
		env = getenv("PERSONA_API_KEY")
	}
	var key string
	switch {
	case env != "" && file != "":
		return "", errors.New("persona: both PERSONA_API_KEY and -persona-api-key-file are set; use one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("persona: reading API key file: %w", err)
		}
		key = trimKey(string(b))
		if key == "" {
			return "", fmt.Errorf("persona: API key file %s is empty", file)
		}
	case env != "":
		key = trimKey(env)
		if key == "" {
			return "", errors.New("persona: PERSONA_API_KEY is blank")
		}
	default:
		return "", ErrNoAPIKey
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	return key, nil
}

func trimKey(s string) string {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "\ufeff"))
}

// checkKey rejects a key a header cannot carry, without echoing it.
func checkKey(key string) error {
	for _, r := range key {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\ufeff' {
			return errors.New("persona: API key contains whitespace or control characters")
		}
	}
	return nil
}
