// Command mkdict makes bodycodec's dictionary, dict-v1.txt, from
// Persona's own example webhook bodies (testdata/persona, taken from
// Persona's OpenAPI specification; see its README for where from):
//
//	go generate ./internal/bodycodec
//
// The dictionary is the examples in compact form, as Persona sends them,
// chosen greedily: the event families personad sees most (inquiries,
// then their sessions, verifications, accounts and reports) come first,
// and a body joins only when much of it is new to the bodies chosen
// before it, until S2's 64 KiB are full. The most common land last,
// nearest the data, where S2's offsets are shortest. The output is a
// function of the examples alone, so that a test can tell when the
// committed file is not what this program makes.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/s2"
)

func main() {
	out := flag.String("o", "dict-v1.txt", "the dictionary file to write")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mkdict [-o FILE] EXAMPLES-DIR")
		os.Exit(2)
	}
	dict, err := build(flag.Arg(0))
	if err == nil {
		err = os.WriteFile(*out, dict, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdict:", err)
		os.Exit(1)
	}
}

// families are the example files' name prefixes, most common in a
// personad's traffic first; a file of none of them comes after all.
var families = []string{"inquiry-", "inquiry-session-", "verification-", "account-", "report-", "document-", "selfie-"}

// minNew is how much of a body must be new to the dictionary so far, as
// the fraction its S2 encoding with that dictionary keeps, for it to join.
const minNew = 0.25

// build returns the dictionary made from the *.json files in dir.
func build(dir string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.json examples in %s", dir)
	}
	slices.SortStableFunc(names, func(a, b string) int { return family(a) - family(b) })
	var chosen [][]byte // most common first
	size := 0
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var body bytes.Buffer
		if err := json.Compact(&body, raw); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(chosen) > 0 {
			d := s2.MakeDict(join(chosen), nil)
			if d != nil && float64(len(d.Encode(nil, body.Bytes()))) < minNew*float64(body.Len()) {
				continue
			}
		}
		chosen = append(chosen, body.Bytes())
		if size += body.Len() + 1; size >= s2.MaxDictSize {
			break
		}
	}
	dict := join(chosen)
	return dict[max(0, len(dict)-s2.MaxDictSize):], nil
}

// family ranks an example file by its name.
func family(path string) int {
	base := filepath.Base(path)
	rank := len(families)
	for i, f := range families {
		// The longest prefix wins: inquiry-session- over inquiry-.
		if strings.HasPrefix(base, f) && (rank == len(families) || len(f) > len(families[rank])) {
			rank = i
		}
	}
	return rank
}

// join lays the bodies out least common first, one a line.
func join(bodies [][]byte) []byte {
	var b []byte
	for _, body := range slices.Backward(bodies) {
		b = append(append(b, body...), '\n')
	}
	return b
}
