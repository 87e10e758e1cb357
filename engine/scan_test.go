package engine_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/personad/personad/engine"
)

// TestStringScanning puts every byte value, and every escape, at every
// position of strings around the scanner's eight-byte stride: Parse must
// accept exactly the strings encoding/json accepts as valid UTF-8, and
// read them as it does.
func TestStringScanning(t *testing.T) {
	const head = `{"data":{"type":"event","id":"e`
	const tail = `","attributes":{"name":"n","created-at":"2024-01-01T00:00:00Z","payload":{}}}}`
	check := func(t *testing.T, content string) {
		t.Helper()
		body := []byte(head + content + tail)
		ev, err := engine.Parse(body)
		valid := json.Valid(body) && utf8.Valid(body)
		switch {
		case valid && err != nil:
			t.Fatalf("rejected valid string %q: %v", content, err)
		case !valid && err == nil:
			t.Fatalf("accepted invalid string %q", content)
		case valid:
			var want string
			if err := json.Unmarshal([]byte(`"e`+content+`"`), &want); err != nil {
				t.Fatal(err)
			}
			if ev.ID != want {
				t.Fatalf("string %q read as %q, want %q", content, ev.ID, want)
			}
		}
	}
	for n := range 20 {
		for p := range n + 1 {
			for c := range 256 {
				check(t, strings.Repeat("a", p)+string([]byte{byte(c)})+strings.Repeat("a", n-p))
			}
			for _, esc := range []string{`\"`, `\\`, `\/`, `\n`, `\u00e9`, `\uD83D\uDE00`, `é`, `\`, `\u00`, `\x`} {
				check(t, strings.Repeat("a", p)+esc+strings.Repeat("a", n-p))
			}
		}
	}
}
