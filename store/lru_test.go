package store

import (
	"slices"
	"testing"
)

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
				if got := lruKeys(c); !slices.Equal(got, s.want) && (len(got) != 0 || len(s.want) != 0) {
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
