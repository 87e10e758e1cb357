package docs

import (
	"os"
	"testing"
)

// The README prints the push receiver whole; go build and go vet compile
// it from receiver/main.go, so the two must be equal.
func TestReadmeReceiverIsTheCompiledExample(t *testing.T) {
	want, err := os.ReadFile("receiver/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := readmeBlock(t, "## Push to your application", "go"); got != string(want) {
		t.Errorf("README's receiver differs from internal/docs/receiver/main.go; copy the file into README.\nREADME:\n%s", got)
	}
}
