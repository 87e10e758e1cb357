package store

// lru maps strings to values within a bound on the values' total weight,
// forgetting the least recently used entries first: the writer's caches
// keep the inquiries in progress, whose next events are the ones coming,
// however many finished inquiries passed through them since. Not safe for
// concurrent use; its zero value is not usable (see newLRU).
type lru[V any] struct {
	m      map[string]*lruEntry[V]
	root   lruEntry[V] // root.next is the most recently used entry, root.prev the least
	weight int         // of the entries held
	limit  int
}

type lruEntry[V any] struct {
	key        string
	val        V
	weight     int
	prev, next *lruEntry[V]
}

// newLRU returns an empty lru that holds at most limit of weight.
func newLRU[V any](limit int) *lru[V] {
	c := &lru[V]{m: make(map[string]*lruEntry[V]), limit: limit}
	c.root.prev, c.root.next = &c.root, &c.root
	return c
}

// get returns key's value and makes it the most recently used.
func (c *lru[V]) get(key string) (val V, ok bool) {
	e, ok := c.m[key]
	if !ok {
		return val, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.val, true
}

// peek returns key's value and leaves the order as it is.
func (c *lru[V]) peek(key string) (val V, ok bool) {
	e, ok := c.m[key]
	if !ok {
		return val, false
	}
	return e.val, true
}

// put sets key's value, of weight w, makes it the most recently used and
// forgets the least recently used others until the total is within the
// limit. A value heavier than the limit is not kept (nor is key's old one).
// Replacing a value allocates nothing: the writer does it for every event.
func (c *lru[V]) put(key string, val V, w int) {
	if w > c.limit {
		c.remove(key)
		return
	}
	e, ok := c.m[key]
	if ok {
		c.unlink(e)
		c.weight -= e.weight
		e.val, e.weight = val, w
	} else {
		e = &lruEntry[V]{key: key, val: val, weight: w}
		c.m[key] = e
	}
	c.pushFront(e)
	c.weight += w
	for c.weight > c.limit {
		c.remove(c.root.prev.key)
	}
}

// remove forgets key.
func (c *lru[V]) remove(key string) {
	e, ok := c.m[key]
	if !ok {
		return
	}
	c.unlink(e)
	delete(c.m, key)
	c.weight -= e.weight
}

// clear forgets everything.
func (c *lru[V]) clear() {
	clear(c.m)
	c.root.prev, c.root.next = &c.root, &c.root
	c.weight = 0
}

func (c *lru[V]) unlink(e *lruEntry[V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *lru[V]) pushFront(e *lruEntry[V]) {
	e.prev, e.next = &c.root, c.root.next
	c.root.next.prev = e
	c.root.next = e
}
