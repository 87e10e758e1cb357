package store

import (
	"path/filepath"
	"testing"
)

// BenchmarkGuardCheck is what the writer adds to every batch to make sure
// it committed into the file at the path: two stats.
func BenchmarkGuardCheck(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "personad.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if err := db.guard.check(); err != nil {
			b.Fatal(err)
		}
	}
}
