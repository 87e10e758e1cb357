package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store that keeps everything in memory: for tests, and for
// embedders that need no durability. It serialises updates; an update that
// fails leaves no trace.
type MemoryStore struct {
	mu         sync.RWMutex
	events     map[string]*Record   // by event id
	inquiry    map[string][]*Record // events by inquiry id
	related    map[string][]*Record // non-inquiry events by RelatedInquiryID
	seq        int64                // last event seq
	proj       map[string]*Inquiry
	changes    []Change
	dead       []DeadLetter
	conflicts  []Conflict
	conflicted map[string]int // conflicts by event id
	links      map[Link]bool
	parts      map[string][]string // objects by owner
	forgotten  map[string]Forget
	drifts     map[string]Drift // by inquiry id
	undo       []func()         // undo log of the running update
	updateErr  error            // when set, every Update fails with it (fault injection)
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{events: map[string]*Record{}, inquiry: map[string][]*Record{}, related: map[string][]*Record{}, proj: map[string]*Inquiry{},
		links: map[Link]bool{}, parts: map[string][]string{}, forgotten: map[string]Forget{}, conflicted: map[string]int{},
		drifts: map[string]Drift{}}
}

// FailUpdates makes every later Update fail with err (nil restores normal
// operation), so tests can see what callers do when the store cannot commit.
func (m *MemoryStore) FailUpdates(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updateErr = err
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.updateErr != nil {
		return m.updateErr
	}
	m.undo = m.undo[:0]
	if err := fn(memTx{m}); err != nil {
		for i := len(m.undo) - 1; i >= 0; i-- {
			m.undo[i]()
		}
		return err
	}
	return nil
}

// AllEvents returns every stored event, whatever its object, in log order.
func (m *MemoryStore) AllEvents() []Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := make([]Record, 0, len(m.events))
	for _, r := range m.events {
		all = append(all, *r)
	}
	slices.SortFunc(all, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return all
}

// DeadLetters returns the dead letters kept so far.
func (m *MemoryStore) DeadLetters() []DeadLetter {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.dead)
}

// Conflicts returns the conflicts kept so far.
func (m *MemoryStore) Conflicts() []Conflict {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.conflicts)
}

type memTx struct{ m *MemoryStore }

func (t memTx) RecordDelivery(eventID string, attempts int, sum [32]byte) (Redelivery, error) {
	r, ok := t.m.events[eventID]
	if !ok {
		return Redelivery{}, nil
	}
	red := Redelivery{Seen: true, Outcome: r.Outcome, ObjectType: r.ObjectType, ObjectID: r.ObjectID}
	if r.SHA256 != sum {
		red.Conflict, red.SHA256, red.Body = true, r.SHA256, slices.Clone(r.Body)
		return red, nil
	}
	old := *r
	t.m.undo = append(t.m.undo, func() { *r = old })
	r.Deliveries++
	r.AttemptsMade = max(r.AttemptsMade, attempts)
	return red, nil
}

func (t memTx) AppendConflict(c *Conflict) (bool, error) {
	m := t.m
	for i := range m.conflicts {
		if m.conflicts[i].EventID == c.EventID && m.conflicts[i].SHA256 == c.SHA256 {
			m.conflicts[i].Deliveries++
			m.undo = append(m.undo, func() { m.conflicts[i].Deliveries-- })
			c.Seq = m.conflicts[i].Seq
			return true, nil
		}
	}
	c.Seq = int64(len(m.conflicts)) + 1
	m.conflicts = append(m.conflicts, *c)
	m.conflicted[c.EventID]++
	m.undo = append(m.undo, func() {
		m.conflicts = m.conflicts[:len(m.conflicts)-1]
		m.conflicted[c.EventID]--
	})
	return false, nil
}

func (t memTx) AppendEvent(rec *Record) error {
	m := t.m
	if _, dup := m.events[rec.EventID]; dup {
		return fmt.Errorf("memstore: event %s already stored", rec.EventID)
	}
	source := cmp.Or(rec.Source, SourceWebhook)
	if source != SourceWebhook && source != SourceAPI {
		return fmt.Errorf("memstore: event %s: unknown source %s", rec.EventID, quoteShort(source))
	}
	m.seq++
	rec.Seq = m.seq
	r := *rec
	r.Source = source
	m.events[r.EventID] = &r
	key := inquiryKey(&r)
	if key != "" {
		m.inquiry[key] = append(m.inquiry[key], &r)
	}
	rel := r.RelatedInquiryID
	if rel != "" {
		m.related[rel] = append(m.related[rel], &r)
	}
	m.undo = append(m.undo, func() {
		m.seq--
		delete(m.events, r.EventID)
		if key != "" {
			m.inquiry[key] = m.inquiry[key][:len(m.inquiry[key])-1]
		}
		if rel != "" {
			m.related[rel] = m.related[rel][:len(m.related[rel])-1]
		}
	})
	return nil
}

func inquiryKey(r *Record) string {
	if r.ObjectType == "inquiry" {
		return r.ObjectID
	}
	return ""
}

func (t memTx) InquiryEvents(id string) ([]Record, error) { return t.m.inquiryEvents(id), nil }

func (m *MemoryStore) inquiryEvents(id string) []Record {
	recs := make([]Record, len(m.inquiry[id]))
	for i, r := range m.inquiry[id] {
		recs[i] = *r
		recs[i].Conflicted = m.conflicted[r.EventID] > 0
	}
	return recs
}

func (t memTx) Inquiry(id string) (*Inquiry, error) {
	if p, ok := t.m.proj[id]; ok {
		return p.Clone(), nil
	}
	return nil, nil
}

func (t memTx) SaveInquiry(inq *Inquiry) error {
	m := t.m
	old, had := m.proj[inq.ID]
	m.proj[inq.ID] = inq.Clone()
	m.undo = append(m.undo, func() {
		if had {
			m.proj[inq.ID] = old
		} else {
			delete(m.proj, inq.ID)
		}
	})
	return nil
}

func (t memTx) AppendChange(c *Change) error {
	m := t.m
	c.Seq = int64(len(m.changes)) + 1
	m.changes = append(m.changes, *c)
	m.undo = append(m.undo, func() { m.changes = m.changes[:len(m.changes)-1] })
	return nil
}

func (t memTx) AddLinks(links []Link) ([]Link, error) {
	m := t.m
	var added []Link
	for _, l := range links {
		if m.links[l] {
			continue
		}
		m.links[l] = true
		m.parts[l.Owner] = append(m.parts[l.Owner], l.Object)
		added = append(added, l)
		m.undo = append(m.undo, func() {
			delete(m.links, l)
			m.parts[l.Owner] = m.parts[l.Owner][:len(m.parts[l.Owner])-1]
		})
	}
	return added, nil
}

func (t memTx) Forgetting(id string) (Forget, error) { return t.m.forgotten[id], nil }

func (t memTx) Forget(id string, mode Forget) ([]Forgotten, error) {
	m := t.m
	var rose []Forgotten
	seen := map[string]bool{id: true}
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		x := queue[0]
		if old, ok := m.forgotten[x]; old < mode {
			m.forgotten[x] = mode
			rose = append(rose, Forgotten{ID: x, Mode: mode})
			m.undo = append(m.undo, func() {
				if ok {
					m.forgotten[x] = old
				} else {
					delete(m.forgotten, x)
				}
			})
		}
		parts := m.parts[x]
		for _, r := range m.inquiry[x] {
			parts = append(slices.Clip(parts), r.Parts...)
		}
		for _, p := range parts {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return rose, nil
}

func (t memTx) ReplaceBodies(ids []string, rewrite func([]byte) ([]byte, error)) error {
	m := t.m
	for _, r := range m.events {
		if !slices.Contains(ids, r.ObjectID) {
			continue
		}
		body, err := rewrite(r.Body)
		if err != nil {
			return err
		}
		r, old := r, r.Body
		r.Body = body
		m.undo = append(m.undo, func() { r.Body = old })
	}
	for i := range m.conflicts {
		c := &m.conflicts[i]
		if !slices.Contains(ids, c.ObjectID) && !slices.Contains(ids, c.BodyObjectID) {
			continue
		}
		body, err := rewrite(c.Body)
		if err != nil {
			return err
		}
		old := c.Body
		c.Body = body
		m.undo = append(m.undo, func() { m.conflicts[i].Body = old })
	}
	return nil
}

func (t memTx) ReplaceDeadLetters(ids []string, rewrite func([]byte) ([]byte, error)) error {
	m := t.m
	for i := range m.dead {
		d := &m.dead[i]
		if !slices.ContainsFunc(IDWords(d.Body), func(w string) bool { return slices.Contains(ids, w) }) {
			continue
		}
		body, err := rewrite(d.Body)
		if err != nil {
			return err
		}
		old := d.Body
		d.Body = body
		m.undo = append(m.undo, func() { m.dead[i].Body = old })
	}
	return nil
}

func (t memTx) AppendDeadLetter(d *DeadLetter) (bool, error) {
	m := t.m
	for i := range m.dead {
		if m.dead[i].SHA256 == d.SHA256 {
			m.dead[i].Deliveries++
			m.undo = append(m.undo, func() { m.dead[i].Deliveries-- })
			return true, nil
		}
	}
	d.Seq = int64(len(m.dead)) + 1
	m.dead = append(m.dead, *d)
	m.undo = append(m.undo, func() { m.dead = m.dead[:len(m.dead)-1] })
	return false, nil
}

// GetInquiry implements Reader.
func (m *MemoryStore) GetInquiry(_ context.Context, id string) (*Inquiry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.proj[id]
	if !ok {
		return nil, fmt.Errorf("inquiry %s: %w", quoteShort(id), ErrNotFound)
	}
	return p.Clone(), nil
}

// Events implements Reader.
func (m *MemoryStore) Events(_ context.Context, id string) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.inquiryEvents(id), nil
}

// RelatedEvents implements Reader.
func (m *MemoryStore) RelatedEvents(_ context.Context, id string) ([]Record, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	recs := make([]Record, len(m.related[id]))
	for i, r := range m.related[id] {
		recs[i] = *r
		recs[i].Conflicted = m.conflicted[r.EventID] > 0
	}
	return recs, nil
}

// Inquiries implements Reader.
func (m *MemoryStore) Inquiries(_ context.Context, q Query) ([]*Inquiry, string, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, "", err
	}
	var after *Cursor
	if q.Cursor != "" {
		c, _ := DecodeCursor(q.Cursor)
		after = &c
	}
	m.mu.RLock()
	var all []*Inquiry
	for _, p := range m.proj {
		if q.Matches(p) && (after == nil || listsAfter(p, *after)) {
			all = append(all, p.Clone())
		}
	}
	m.mu.RUnlock()
	// At the millisecond, as the cursor compares and the SQLite store
	// sorts: at full precision two inquiries in one millisecond could
	// sort otherwise than the cursor reads them, and a page skip one.
	created := q.ByCreated()
	slices.SortFunc(all, func(a, b *Inquiry) int {
		if c := cmp.Compare(b.ListedAt(created).UnixMilli(), a.ListedAt(created).UnixMilli()); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(all) <= q.Limit {
		return all, "", nil
	}
	return all[:q.Limit], q.CursorAfter(all[q.Limit-1]), nil
}

// listsAfter reports whether p comes after c in c's listing order (newest
// first, then id descending), at millisecond precision as cursors carry
// it.
func listsAfter(p *Inquiry, c Cursor) bool {
	pm, cm := p.ListedAt(c.ByCreated).UnixMilli(), c.At.UnixMilli()
	return pm < cm || (pm == cm && p.ID < c.ID)
}

// Changes implements Reader.
func (m *MemoryStore) Changes(_ context.Context, after int64, limit int) ([]Change, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	start := min(max(after, 0), int64(len(m.changes)))
	end := min(start+int64(max(limit, 0)), int64(len(m.changes)))
	return slices.Clone(m.changes[start:end]), nil
}

func (t memTx) MarkDeadLetterReplayed(seq int64, at time.Time, eventID string) error {
	m := t.m
	i := int(seq) - 1
	if seq < 1 || i >= len(m.dead) {
		return fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	d := &m.dead[i]
	if d.Replayed() {
		return fmt.Errorf("dead letter %d: %w", seq, ErrAlreadyReplayed)
	}
	d.ReplayedAt, d.ReplayedEventID = at, eventID
	m.undo = append(m.undo, func() { m.dead[i].ReplayedAt, m.dead[i].ReplayedEventID = time.Time{}, "" })
	return nil
}

// DeadLetterPage implements Reader.
func (m *MemoryStore) DeadLetterPage(_ context.Context, before int64, limit int) ([]DeadLetter, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var page []DeadLetter
	for i := len(m.dead) - 1; i >= 0 && len(page) < limit; i-- {
		if before == 0 || m.dead[i].Seq < before {
			page = append(page, m.dead[i])
		}
	}
	return page, nil
}

// GetDeadLetter implements Reader.
func (m *MemoryStore) GetDeadLetter(_ context.Context, seq int64) (*DeadLetter, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if seq < 1 || seq > int64(len(m.dead)) {
		return nil, fmt.Errorf("dead letter %d: %w", seq, ErrNotFound)
	}
	d := m.dead[seq-1]
	return &d, nil
}

func (t memTx) SetDrift(d *Drift) error {
	t.m.setDrift(d.InquiryID, d)
	return nil
}

func (t memTx) ClearDrift(inquiryID string) error {
	t.m.setDrift(inquiryID, nil)
	return nil
}

// setDrift keeps d as id's drift, or forgets id's when d is nil.
func (m *MemoryStore) setDrift(id string, d *Drift) {
	old, had := m.drifts[id]
	if d != nil {
		m.drifts[id] = *d
	} else {
		delete(m.drifts, id)
	}
	m.undo = append(m.undo, func() {
		if had {
			m.drifts[id] = old
		} else {
			delete(m.drifts, id)
		}
	})
}

// Drifts implements Reader.
func (m *MemoryStore) Drifts(_ context.Context, ids []string) (map[string]Drift, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]Drift{}
	for _, id := range ids {
		if d, ok := m.drifts[id]; ok {
			out[id] = d
		}
	}
	return out, nil
}
