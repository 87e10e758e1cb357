package store

import (
	"slices"

	"github.com/personad/personad/engine"
)

// maxCachedProjections bounds the writer's projection cache (~0.5 KB each,
// about twice that in the heap). A miss costs one indexed SELECT and a
// JSON decode; the bound keeps the daemon's memory flat on a small VM.
// The least recently used are forgotten first, so the inquiries in
// progress stay (personad bench keeps 200 open); it was 20,000 until the
// soak of issue 15 ran over its RSS target.
const maxCachedProjections = 10_000

// projections caches the writer's view of inquiry projections, so that an
// event arriving in order needs neither a SELECT nor JSON decoding. Only
// the writer goroutine uses it. It stays right because every write of a
// projection goes through the writer: writes of an fn that rolls back are
// forgotten, a failed batch empties it, and so does a commit by another
// process, which PRAGMA data_version reveals.
//
// It also holds the links known to be stored, so that the links an
// inquiry's every event repeats are inserted once, and the filter of
// forgotten ids (nil until loaded), with the same rules.
type projections struct {
	m        *lru[*engine.Inquiry] // nil value: known to have no projection
	version  int64                 // data_version the entries are valid for
	fnWrites []string              // ids the running fn saved

	links     map[engine.Link]struct{} // stored links
	fnLinks   []engine.Link            // links the running fn inserted
	forgotten *idFilter

	// hist holds inquiries' stored logs parsed (InquiryHistory), in seq
	// order, each as ParseRecords parses it, weighed by their counts of
	// events. An entry is started by a miss, or by the first event of
	// an inquiry with no projection, and grows with AppendEvent. A
	// rewrite of an object's stored bodies drops its entry (Retain's
	// empties the cache), a kept conflict drops its event's inquiry's,
	// and the running fn's entries are dropped when it rolls back.
	hist       *lru[[]*engine.Event]
	fnHist     []string // inquiries whose entry the running fn started or grew
	histMisses int64    // InquiryHistory calls that read and parsed the log
}

// maxCachedHistoryEvents bounds the parsed-history cache (an event and
// its strings are ~0.9 KB of live heap, so ~3.5 MB, about twice that in
// RSS); when it is full the least recently used logs are dropped. The
// logs of the inquiries in progress fit twice (personad bench keeps 200
// open, ~2,000 events). At 32,768 the soak's daemon peaked 35 MiB
// higher, and a fully shuffled BenchmarkIngestRealistic ran no faster
// than at 4,096.
const maxCachedHistoryEvents = 4_096

// maxCachedLinks bounds the known-links cache (~100 bytes each); when it
// is full it starts again empty.
const maxCachedLinks = 100_000

func newProjections() *projections {
	return &projections{m: newLRU[*engine.Inquiry](maxCachedProjections), version: -1,
		links: make(map[engine.Link]struct{}), hist: newLRU[[]*engine.Event](maxCachedHistoryEvents)}
}

// history returns a new slice of the cached events of id's log, with room
// for one more; ok is false on a miss.
func (p *projections) history(id string) (events []*engine.Event, ok bool) {
	h, ok := p.hist.get(id)
	if !ok {
		return nil, false
	}
	events = make([]*engine.Event, len(h), len(h)+1)
	copy(events, h)
	return events, true
}

// historyLoaded caches id's log as the database holds it now.
func (p *projections) historyLoaded(id string, events []*engine.Event) {
	p.hist.put(id, slices.Clone(events), len(events))
	p.fnHist = append(p.fnHist, id)
}

// appended notes that the running fn appended ev to id's log; isNew says
// id had no stored event before. An entry that is not cached stays
// uncached unless the log was empty, and one whose event the engine did
// not hand over (ev nil) is dropped.
func (p *projections) appended(id string, ev *engine.Event, isNew bool) {
	h, ok := p.hist.peek(id)
	switch {
	case ev == nil:
		p.dropHistory(id)
	case ok:
		p.hist.put(id, append(h, ev), len(h)+1)
		p.fnHist = append(p.fnHist, id)
	case isNew:
		p.historyLoaded(id, []*engine.Event{ev})
	}
}

// dropHistory forgets id's cached log.
func (p *projections) dropHistory(id string) { p.hist.remove(id) }

// bodiesRewritten forgets every cached log: a stored body changed.
func (p *projections) bodiesRewritten() { p.hist.clear() }

// get returns a copy of the cached projection; ok is false on a miss.
func (p *projections) get(id string) (inq *engine.Inquiry, ok bool) {
	inq, ok = p.m.get(id)
	if inq != nil {
		inq = inq.Clone()
	}
	return inq, ok
}

// stored says whether the database holds a projection for id; known is
// false when the cache does not know.
func (p *projections) stored(id string) (stored, known bool) {
	inq, known := p.m.peek(id)
	return inq != nil, known
}

// loaded caches what the database holds for id (nil: nothing).
func (p *projections) loaded(id string, inq *engine.Inquiry) {
	if inq != nil {
		inq = inq.Clone()
	}
	p.m.put(id, inq, 1)
}

// saved caches a projection the running fn wrote.
func (p *projections) saved(inq *engine.Inquiry) {
	p.loaded(inq.ID, inq)
	p.fnWrites = append(p.fnWrites, inq.ID)
}

// linkKnown says whether l is stored already.
func (p *projections) linkKnown(l engine.Link) bool {
	_, ok := p.links[l]
	return ok
}

// linkStored caches a link the running fn inserted.
func (p *projections) linkStored(l engine.Link) {
	if len(p.links) >= maxCachedLinks {
		clear(p.links)
	}
	p.links[l] = struct{}{}
	p.fnLinks = append(p.fnLinks, l)
}

// startFn begins tracking the writes of the next fn.
func (p *projections) startFn() {
	p.fnWrites = p.fnWrites[:0]
	p.fnLinks = p.fnLinks[:0]
	p.fnHist = p.fnHist[:0]
}

// rollBackFn forgets what the rolled-back fn wrote.
func (p *projections) rollBackFn() {
	for _, id := range p.fnWrites {
		p.m.remove(id)
	}
	for _, l := range p.fnLinks {
		delete(p.links, l)
	}
	for _, id := range p.fnHist {
		p.dropHistory(id)
	}
	p.fnWrites = p.fnWrites[:0]
	p.fnLinks = p.fnLinks[:0]
	p.fnHist = p.fnHist[:0]
}

// validate empties the cache unless the database is still at version.
func (p *projections) validate(version int64) {
	if version != p.version {
		p.clear()
		p.version = version
	}
}

// reset empties the cache after a batch failed.
func (p *projections) reset() {
	p.clear()
	p.version = -1
}

func (p *projections) clear() {
	p.m.clear()
	clear(p.links)
	p.forgotten = nil
	p.bodiesRewritten()
}
