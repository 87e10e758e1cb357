package store

import "github.com/personad/personad/engine"

// maxCachedProjections bounds the writer's projection cache (~0.5 KB each,
// about twice that in the heap). A miss costs one indexed SELECT and a
// JSON decode; the bound keeps the daemon's memory flat on a small VM.
const maxCachedProjections = 20_000

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
	m        map[string]*engine.Inquiry // nil value: known to have no projection
	version  int64                      // data_version the entries are valid for
	fnWrites []string                   // ids the running fn saved

	links     map[engine.Link]struct{} // stored links
	fnLinks   []engine.Link            // links the running fn inserted
	forgotten *idFilter
}

// maxCachedLinks bounds the known-links cache (~100 bytes each); when it
// is full it starts again empty.
const maxCachedLinks = 100_000

func newProjections() *projections {
	return &projections{m: make(map[string]*engine.Inquiry), version: -1, links: make(map[engine.Link]struct{})}
}

// get returns a copy of the cached projection; ok is false on a miss.
func (p *projections) get(id string) (inq *engine.Inquiry, ok bool) {
	inq, ok = p.m[id]
	if inq != nil {
		inq = inq.Clone()
	}
	return inq, ok
}

// stored says whether the database holds a projection for id; known is
// false when the cache does not know.
func (p *projections) stored(id string) (stored, known bool) {
	inq, known := p.m[id]
	return inq != nil, known
}

// loaded caches what the database holds for id (nil: nothing).
func (p *projections) loaded(id string, inq *engine.Inquiry) {
	if len(p.m) >= maxCachedProjections {
		p.evict()
	}
	if inq != nil {
		inq = inq.Clone()
	}
	p.m[id] = inq
}

// evict forgets a tenth of the cache, picked by map iteration order
// (random), so that the inquiries in progress mostly stay.
func (p *projections) evict() {
	n := len(p.m) / 10
	for id := range p.m {
		if n == 0 {
			return
		}
		delete(p.m, id)
		n--
	}
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
}

// rollBackFn forgets what the rolled-back fn wrote.
func (p *projections) rollBackFn() {
	for _, id := range p.fnWrites {
		delete(p.m, id)
	}
	for _, l := range p.fnLinks {
		delete(p.links, l)
	}
	p.fnWrites = p.fnWrites[:0]
	p.fnLinks = p.fnLinks[:0]
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
	clear(p.m)
	clear(p.links)
	p.forgotten = nil
}
