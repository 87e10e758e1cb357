package store

import "hash/maphash"

// idFilter is a Bloom filter of the forgotten ids, so that the writer
// answers "is this object forgotten?" for almost every delivery without a
// query: a miss is certain, a hit is checked in the forgotten table. Ids
// are only ever added (forgotten rows are never deleted); an id added by a
// batch that then rolled back only costs a false positive.
type idFilter struct {
	bits  []uint64
	n     int // ids added
	limit int // ids it was sized for; past it, the caller rebuilds it bigger
}

// filterProbes is the number of bits an id sets: with 16 bits per id it
// gives about 0.05 % false positives at the sizing limit.
const filterProbes = 8

var filterSeed = maphash.MakeSeed()

func newIDFilter(limit int) *idFilter {
	limit = max(limit, 1<<12)
	return &idFilter{bits: make([]uint64, limit*16/64), limit: limit}
}

func (f *idFilter) probes(id string) (h1, h2 uint64) {
	h := maphash.String(filterSeed, id)
	return h, h>>32 | h<<32 | 1
}

func (f *idFilter) add(id string) {
	h1, h2 := f.probes(id)
	m := uint64(len(f.bits) * 64)
	for i := range uint64(filterProbes) {
		b := (h1 + i*h2) % m
		f.bits[b/64] |= 1 << (b % 64)
	}
	f.n++
}

func (f *idFilter) mayContain(id string) bool {
	h1, h2 := f.probes(id)
	m := uint64(len(f.bits) * 64)
	for i := range uint64(filterProbes) {
		b := (h1 + i*h2) % m
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// full reports that the filter holds more ids than it was sized for.
func (f *idFilter) full() bool { return f.n > f.limit }
