package personatest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"
)

// event is one stored Events API item. Only the fields the fake indexes are
// parsed when it is added; its bytes are cut out of the webhook body the
// first time a list serves it, so loading thousands of events costs one
// JSON pass each.
type event struct {
	id        string
	name      string
	createdAt time.Time
	objectID  string
	src       []byte          // what was added: a webhook body or, when raw is set, nil
	raw       json.RawMessage // the item; nil until item() is called on a body
}

// item returns the Events API item: the webhook body's "data".
func (e *event) item() json.RawMessage {
	if e.raw == nil {
		var doc struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(e.src, &doc) // parsed without error when added
		e.raw, e.src = doc.Data, nil
	}
	return e.raw
}

// inquiry is what the fake knows of one inquiry: the payload of the latest
// event about it.
type inquiry struct {
	id        string
	createdAt time.Time
	status    string          // attributes.status in last's payload
	last      *event          // the latest event about it
	rendered  json.RawMessage // last's payload.data with any SetStatus override; nil until needed
}

// newer reports whether item a comes before item b in Persona's
// newest-first order: later created-at first, ties by id descending.
func newer(aAt time.Time, aID string, bAt time.Time, bID string) bool {
	if c := aAt.Compare(bAt); c != 0 {
		return c > 0
	}
	return aID > bID
}

// sortedList keeps items in insertion order and sorts them newest first
// only when read after a change, so loading n items costs O(n) and the
// first list after loading O(n log n).
type sortedList[T any] struct {
	items  []T
	sorted bool
	key    func(T) (time.Time, string)
}

func (l *sortedList[T]) add(it T) {
	l.items = append(l.items, it)
	l.sorted = false
}

func (l *sortedList[T]) inOrder() []T {
	if !l.sorted {
		slices.SortFunc(l.items, func(a, b T) int {
			aAt, aID := l.key(a)
			bAt, bID := l.key(b)
			switch {
			case newer(aAt, aID, bAt, bID):
				return -1
			case newer(bAt, bID, aAt, aID):
				return 1
			}
			return 0
		})
		l.sorted = true
	}
	return l.items
}

func eventKey(e *event) (time.Time, string)     { return e.createdAt, e.id }
func inquiryKey(q *inquiry) (time.Time, string) { return q.createdAt, q.id }

// data is the fake's content; guarded by Server.mu.
type data struct {
	events    map[string]*event
	byObject  map[string]*sortedList[*event]
	allEvents sortedList[*event]
	inquiries map[string]*inquiry
	inqList   sortedList[*inquiry]
	overrides map[string]string // SetStatus values by inquiry id
}

func newData() data {
	return data{
		events:    make(map[string]*event),
		byObject:  make(map[string]*sortedList[*event]),
		allEvents: sortedList[*event]{key: eventKey},
		inquiries: make(map[string]*inquiry),
		inqList:   sortedList[*inquiry]{key: inquiryKey},
		overrides: make(map[string]string),
	}
}

// eventDoc is the part of an Events API item the fake indexes.
type eventDoc struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Attributes struct {
		Name      string `json:"name"`
		CreatedAt string `json:"created-at"`
		Payload   struct {
			Data *struct {
				Type       string `json:"type"`
				ID         string `json:"id"`
				Attributes struct {
					Status    string `json:"status"`
					CreatedAt string `json:"created-at"`
				} `json:"attributes"`
			} `json:"data"`
		} `json:"payload"`
	} `json:"attributes"`
}

// payloadObject is what the fake reads of an event's payload.data.
type payloadObject struct {
	typ, id, status string
	createdAt       time.Time // zero when absent
}

// AddWebhookBody stores the event a webhook body {"data": event} carries,
// as AddEvent does. Errors: the body is not such a JSON object, or as
// AddEvent.
func (s *Server) AddWebhookBody(body []byte) error {
	var doc struct {
		Data *eventDoc `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("personatest: webhook body is not a JSON object with an event as data: %w", err)
	}
	if doc.Data == nil {
		return errors.New(`personatest: webhook body has no "data"`)
	}
	ev, obj, err := checkEvent(doc.Data)
	if err != nil {
		return err
	}
	ev.src = bytes.Clone(body)
	return s.store(ev, obj)
}

// AddEvent stores an Events API item (a webhook body's "data") under the id
// of the object it is about, attributes.payload.data.id. When that object
// is an inquiry, the inquiry is created or updated: its payload.data becomes
// what the inquiries endpoints serve, unless an already applied event is
// newer (by event created-at, ties by event id). Adding an event id again
// replaces the stored event.
//
// Errors (nothing is stored then): the item is not a JSON object, not of
// type "event", has no id, no RFC 3339 attributes.created-at, no
// payload.data object with type and id; an inquiry seen for the first time
// has no RFC 3339 created-at; the event id is already stored for another
// object.
func (s *Server) AddEvent(item json.RawMessage) error {
	var doc eventDoc
	if err := json.Unmarshal(item, &doc); err != nil {
		return fmt.Errorf("personatest: event is not a JSON object: %w", err)
	}
	ev, obj, err := checkEvent(&doc)
	if err != nil {
		return err
	}
	ev.raw = bytes.Clone(item)
	return s.store(ev, obj)
}

// checkEvent validates a parsed item and returns what the fake indexes.
func checkEvent(doc *eventDoc) (*event, payloadObject, error) {
	if doc.Type != "event" || doc.ID == "" {
		return nil, payloadObject{}, fmt.Errorf("personatest: event needs type \"event\" and an id, got type %q id %q", doc.Type, doc.ID)
	}
	at, err := time.Parse(time.RFC3339, doc.Attributes.CreatedAt)
	if err != nil {
		return nil, payloadObject{}, fmt.Errorf("personatest: event %s: created-at: %w", doc.ID, err)
	}
	p := doc.Attributes.Payload.Data
	if p == nil || p.Type == "" || p.ID == "" {
		return nil, payloadObject{}, fmt.Errorf("personatest: event %s: payload.data needs to be an object with a type and an id", doc.ID)
	}
	obj := payloadObject{typ: p.Type, id: p.ID, status: p.Attributes.Status}
	if p.Attributes.CreatedAt != "" {
		t, err := time.Parse(time.RFC3339, p.Attributes.CreatedAt)
		if err != nil {
			return nil, payloadObject{}, fmt.Errorf("personatest: event %s: payload created-at: %w", doc.ID, err)
		}
		obj.createdAt = t
	}
	return &event{id: doc.ID, name: doc.Attributes.Name, createdAt: at, objectID: p.ID}, obj, nil
}

// store adds a checked event and updates the inquiry it is about.
func (s *Server) store(ev *event, obj payloadObject) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.events[ev.id]
	if old != nil && old.objectID != ev.objectID {
		return fmt.Errorf("personatest: event %s is already stored for %s, not %s", ev.id, old.objectID, ev.objectID)
	}
	var inq *inquiry
	if obj.typ == "inquiry" {
		inq = s.inquiries[obj.id]
		if inq == nil && obj.createdAt.IsZero() {
			return fmt.Errorf("personatest: event %s: new inquiry %s has no created-at", ev.id, obj.id)
		}
	}

	list := s.byObject[ev.objectID]
	if list == nil {
		list = &sortedList[*event]{key: eventKey}
		s.byObject[ev.objectID] = list
	}
	if old != nil {
		*old = *ev
		ev = old
		list.sorted, s.allEvents.sorted = false, false
	} else {
		s.events[ev.id] = ev
		list.add(ev)
		s.allEvents.add(ev)
	}

	if obj.typ != "inquiry" {
		return nil
	}
	if inq == nil {
		inq = &inquiry{id: obj.id}
		s.inquiries[obj.id] = inq
		s.inqList.add(inq)
	} else if inq.last != ev && newer(inq.last.createdAt, inq.last.id, ev.createdAt, ev.id) {
		return nil // an event applied before is newer
	}
	inq.last, inq.status, inq.rendered = ev, obj.status, nil
	if !obj.createdAt.IsZero() && !obj.createdAt.Equal(inq.createdAt) {
		inq.createdAt = obj.createdAt
		s.inqList.sorted = false
	}
	return nil
}

// SetStatus makes the inquiry endpoints report status for inquiryID from
// now on, whatever its events say, as when Persona changed an inquiry and
// the webhook was lost. It also applies to an inquiry added later; an empty
// status removes the override.
func (s *Server) SetStatus(inquiryID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == "" {
		delete(s.overrides, inquiryID)
	} else {
		s.overrides[inquiryID] = status
	}
	if inq := s.inquiries[inquiryID]; inq != nil {
		inq.rendered = nil
	}
}

// inquiryObject returns inq as the API serves it: the payload.data of its
// latest event with attributes.status overridden by SetStatus, computed on
// first use after a change.
func (s *Server) inquiryObject(inq *inquiry) json.RawMessage {
	if inq.rendered != nil {
		return inq.rendered
	}
	var doc struct {
		Attributes struct {
			Payload struct {
				Data json.RawMessage `json:"data"`
			} `json:"payload"`
		} `json:"attributes"`
	}
	_ = json.Unmarshal(inq.last.item(), &doc) // parsed without error when added
	inq.rendered = doc.Attributes.Payload.Data
	status, ok := s.overrides[inq.id]
	if !ok {
		return inq.rendered
	}
	var obj map[string]json.RawMessage
	var attrs map[string]json.RawMessage
	if json.Unmarshal(inq.rendered, &obj) != nil || json.Unmarshal(obj["attributes"], &attrs) != nil {
		return inq.rendered // checkEvent saw an object with attributes; cannot happen
	}
	if attrs == nil {
		attrs = make(map[string]json.RawMessage)
	}
	attrs["status"], _ = json.Marshal(status)
	obj["attributes"], _ = json.Marshal(attrs)
	inq.rendered, _ = json.Marshal(obj)
	return inq.rendered
}

// statusOf is what the API reports as inq's status.
func (s *Server) statusOf(inq *inquiry) string {
	if st, ok := s.overrides[inq.id]; ok {
		return st
	}
	return inq.status
}

// listEvents answers GET /api/v1/events. links.next is null exactly when
// no matching event follows the page, so a page that empties the list has
// next null.
func (s *Server) listEvents(q url.Values) response {
	size, err := pageSize(q)
	if err != nil {
		return errorResponse(http.Header{}, http.StatusBadRequest, "Bad Request", err.Error())
	}
	names := nameSet(q.Get("filter[name]"))
	var evs []*event
	if _, ok := q["filter[object-id]"]; ok {
		if l := s.byObject[q.Get("filter[object-id]")]; l != nil {
			evs = l.inOrder()
		}
	} else {
		evs = s.allEvents.inOrder()
	}
	start := 0
	if after := q.Get("page[after]"); after != "" {
		cur := s.events[after]
		if cur == nil {
			return errorResponse(http.Header{}, http.StatusBadRequest, "Bad Request", fmt.Sprintf("page[after] %q is not a known event id", after))
		}
		start = sort.Search(len(evs), func(i int) bool { return newer(cur.createdAt, cur.id, evs[i].createdAt, evs[i].id) })
	}
	page := make([]json.RawMessage, 0, size)
	last, more := "", false
	for _, e := range evs[start:] {
		if names != nil && !names[e.name] {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, e.item())
		last = e.id
	}
	return okResponse(listBody(page, nextLink("/api/v1/events", q, size, last, more)))
}

// listInquiries answers GET /api/v1/inquiries; links.next as listEvents.
func (s *Server) listInquiries(q url.Values) response {
	size, err := pageSize(q)
	if err != nil {
		return errorResponse(http.Header{}, http.StatusBadRequest, "Bad Request", err.Error())
	}
	var from time.Time
	if v := q.Get("filter[created-at-start]"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			return errorResponse(http.Header{}, http.StatusBadRequest, "Bad Request", fmt.Sprintf("filter[created-at-start] %q is not an RFC 3339 time", v))
		}
	}
	statuses := nameSet(q.Get("filter[status]"))
	inqs := s.inqList.inOrder()
	start := 0
	if after := q.Get("page[after]"); after != "" {
		cur := s.inquiries[after]
		if cur == nil {
			return errorResponse(http.Header{}, http.StatusBadRequest, "Bad Request", fmt.Sprintf("page[after] %q is not a known inquiry id", after))
		}
		start = sort.Search(len(inqs), func(i int) bool { return newer(cur.createdAt, cur.id, inqs[i].createdAt, inqs[i].id) })
	}
	page := make([]json.RawMessage, 0, size)
	last, more := "", false
	for _, inq := range inqs[start:] {
		if inq.createdAt.Before(from) {
			break // newest first: all that follow are older still
		}
		if statuses != nil && !statuses[s.statusOf(inq)] {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, s.inquiryObject(inq))
		last = inq.id
	}
	return okResponse(listBody(page, nextLink("/api/v1/inquiries", q, size, last, more)))
}

// getInquiry answers GET /api/v1/inquiries/{id}.
func (s *Server) getInquiry(id string) response {
	inq := s.inquiries[id]
	if inq == nil {
		return errorResponse(http.Header{}, http.StatusNotFound, "Record not found", fmt.Sprintf("Could not find inquiry with id %s", id))
	}
	var b bytes.Buffer
	b.WriteString(`{"data":`)
	b.Write(s.inquiryObject(inq))
	b.WriteString(`,"included":[]}`)
	return okResponse(b.Bytes())
}
