package docs

import (
	"bufio"
	"bytes"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// readmeBlock returns the body of the first fenced block of the given
// language after the heading, failing the test when there is none.
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no heading %q", heading)
	}
	_, after, ok = strings.Cut(after, "\n```"+lang+"\n")
	if !ok {
		t.Fatalf("README has no ```%s block under %q", lang, heading)
	}
	block, _, ok := strings.Cut(after, "\n```\n")
	if !ok {
		t.Fatalf("README's ```%s block under %q is not closed", lang, heading)
	}
	return block + "\n"
}

// The README prints the embedding example whole; go build and go vet
// compile it from embed/main.go, so the two must be equal.
func TestReadmeEmbeddingIsTheCompiledExample(t *testing.T) {
	want, err := os.ReadFile("embed/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := readmeBlock(t, "## Embedding", "go"); got != string(want) {
		t.Errorf("README's embedding example differs from internal/docs/embed/main.go; copy the file into README.\nREADME:\n%s", got)
	}
}

// The systemd unit must work as printed: systemd takes a '#' only at the
// start of a line, so a trailing comment becomes part of the value.
func TestReadmeSystemdUnit(t *testing.T) {
	unit := readmeBlock(t, "## Deploying on a small VM", "ini")
	sections := map[string]map[string][]string{}
	var section string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			sections[section] = map[string][]string{}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Errorf("line %d %q is not key=value inside a section", n, line)
			continue
		}
		if strings.Contains(value, " #") || strings.Contains(value, "\t#") {
			t.Errorf("line %d %q has a trailing comment, which systemd would read as part of the value", n, line)
		}
		sections[section][key] = append(sections[section][key], value)
	}
	want := []struct{ section, key, value string }{
		{"Unit", "Wants", "network-online.target"},
		{"Unit", "After", "network-online.target"},
		{"Service", "User", "personad"},
		{"Service", "StateDirectory", "personad"},
		{"Service", "EnvironmentFile", "/etc/personad/env"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		if got := sections[w.section][w.key]; len(got) != 1 || got[0] != w.value {
			t.Errorf("[%s] %s = %q, want %q", w.section, w.key, got, w.value)
		}
	}
	exec := sections["Service"]["ExecStart"]
	if len(exec) != 1 || !strings.Contains(exec[0], "-db /var/lib/personad/") {
		t.Errorf("ExecStart = %q, want the database in the StateDirectory, /var/lib/personad", exec)
	}
}

// The licence is Apache-2.0's text, unchanged.
func TestLicenseIsApache2(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "END OF TERMS AND CONDITIONS"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("LICENSE lacks %q", s)
		}
	}
}

// go.mod's go line names the oldest Go that builds personad: the newest
// go line among the modules it is built from, not the toolchain that
// happened to be installed.
func TestGoLineIsTheOldestThatBuilds(t *testing.T) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for line := range strings.Lines(string(gomod)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	if goLine == "" {
		t.Fatal("go.mod has no go line")
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.GoVersion}}{{end}}{{end}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := "go1"
	for _, v := range strings.Fields(string(out)) {
		if version.Compare("go"+v, need) > 0 {
			need = "go" + v
		}
	}
	if version.Compare("go"+goLine, need) != 0 {
		t.Errorf("go.mod says go %s; the newest go line of the modules personad is built from is %s", goLine, strings.TrimPrefix(need, "go"))
	}
}
