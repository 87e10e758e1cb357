package store

import (
	"slices"
	"testing"
)

func (c *lru[V]) len() int { return len(c.m) }

// all calls fn for every entry, from the most recently used; fn must not
// change c.
func (c *lru[V]) all(fn func(key string, val V)) {
	for e := c.root.next; e != &c.root; e = e.next {
		fn(e.key, e.val)
	}
}

func lruKeys(c *lru[int]) (keys []string) {
	c.all(func(k string, _ int) { keys = append(keys, k) })
	return keys
}

func TestLRU(t *testing.T) {
	type step struct {
		op   string // put, get, peek, remove, clear
		key  string
		w    int
		want []string // keys held afterwards, most recently used first
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"puts evict the least recently used", []step{
			{"put", "a", 1, []string{"a"}},
			{"put", "b", 1, []string{"b", "a"}},
			{"put", "c", 1, []string{"c", "b", "a"}},
			{"put", "d", 1, []string{"d", "c", "b"}},
		}},
		{"a get is a use", []step{
			{"put", "a", 1, []string{"a"}},
			{"put", "b", 1, []string{"b", "a"}},
			{"put", "c", 1, []string{"c", "b", "a"}},
			{"get", "a", 0, []string{"a", "c", "b"}},
			{"put", "d", 1, []string{"d", "a", "c"}},
		}},
		{"a peek is not", []step{
			{"put", "a", 1, nil},
			{"put", "b", 1, nil},
			{"put", "c", 1, nil},
			{"peek", "a", 0, []string{"c", "b", "a"}},
			{"put", "d", 1, []string{"d", "c", "b"}},
		}},
		{"weights: a heavy value evicts several", []step{
			{"put", "a", 1, nil},
			{"put", "b", 1, nil},
			{"put", "c", 2, []string{"c", "b"}},
			{"put", "b", 3, []string{"b"}},
		}},
		{"a put of a held key is a use, and reweighs it", []step{
			{"put", "a", 1, nil},
			{"put", "b", 1, nil},
			{"put", "a", 2, []string{"a", "b"}},
			{"put", "c", 1, []string{"c", "a"}},
		}},
		{"a value over the limit is not kept, nor the old one", []step{
			{"put", "a", 1, nil},
			{"put", "b", 1, nil},
			{"put", "a", 4, []string{"b"}},
		}},
		{"remove and clear", []step{
			{"put", "a", 1, nil},
			{"put", "b", 1, nil},
			{"remove", "a", 0, []string{"b"}},
			{"remove", "x", 0, []string{"b"}},
			{"clear", "", 0, []string{}},
			{"put", "c", 3, []string{"c"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newLRU[int](3)
			for i, s := range tt.steps {
				switch s.op {
				case "put":
					c.put(s.key, i, s.w)
				case "get", "peek":
					get := c.get
					if s.op == "peek" {
						get = c.peek
					}
					if _, ok := get(s.key); !ok {
						t.Fatalf("step %d: %s %s missed", i, s.op, s.key)
					}
				case "remove":
					c.remove(s.key)
				case "clear":
					c.clear()
				}
				if s.want == nil {
					continue
				}
				if got := lruKeys(c); !slices.Equal(got, s.want) {
					t.Fatalf("step %d (%s %s): holds %v, want %v", i, s.op, s.key, got, s.want)
				}
				w := 0
				for _, k := range s.want {
					w += c.m[k].weight
				}
				if w != c.weight || c.weight > c.limit || c.len() != len(s.want) {
					t.Fatalf("step %d: weight %d counted, %d held, limit %d, %d entries", i, c.weight, w, c.limit, c.len())
				}
			}
		})
	}
}

// TestLRUReplaceAllocatesNothing: the writer replaces a cached projection,
// and grows a cached log, for every event it stores.
func TestLRUReplaceAllocatesNothing(t *testing.T) {
	c := newLRU[int](10)
	c.put("a", 0, 1)
	c.put("b", 0, 1)
	allocs := testing.AllocsPerRun(100, func() {
		c.put("a", 1, 2)
		c.put("b", 1, 1)
	})
	if allocs != 0 {
		t.Errorf("replacing a value allocates %.0f times", allocs)
	}
	if v, ok := c.get("a"); !ok || v != 1 || c.weight != 3 {
		t.Errorf("after replacing: a = %d, %v; weight %d", v, ok, c.weight)
	}
}
