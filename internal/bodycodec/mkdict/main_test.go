package main

import (
	"bytes"
	"os"
	"testing"
)

// TestDictionaryIsWhatMkdictMakes fails when the committed dictionary is
// not what this program makes of the committed examples: run go generate
// ./internal/bodycodec after changing either, and know that a changed
// dictionary needs a new tag, since bodies stored with the old one must
// still decode.
func TestDictionaryIsWhatMkdictMakes(t *testing.T) {
	want, err := build("../../../testdata/persona")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../dict-v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("dict-v1.txt (%d bytes) is not what mkdict makes (%d bytes): run go generate ./internal/bodycodec, with a new tag for a new dictionary", len(got), len(want))
	}
}

func TestFamilyPrefersTheLongestPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		want int
	}{
		{"inquiry-approved.json", 0},
		{"inquiry-session-started.json", 1},
		{"report-watchlist-matched.json", 4},
		{"transaction-created.json", len(families)},
	} {
		if got := family(tc.name); got != tc.want {
			t.Errorf("family(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
}
