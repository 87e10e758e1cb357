package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

func TestParse(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkIngest/conc=64-2   	       1	4020094529 ns/op	      5535 disk-B/event	      4975 events/s
BenchmarkIngest/conc=64-2   	       1	3171594311 ns/op	      5536 disk-B/event	      6306 events/s
BenchmarkOther   	     100	        12.5 ns/op
--- FAIL: not a figure 1 2
PASS
`)
	s := samples{}
	if err := s.parse(out); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, unit string
		want       []float64
	}{
		{"BenchmarkIngest/conc=64", "events/s", []float64{4975, 6306}},
		{"BenchmarkIngest/conc=64", "disk-B/event", []float64{5535, 5536}},
		{"BenchmarkOther", "ns/op", []float64{12.5}},
	} {
		got := s[c.name][c.unit]
		if len(got) != len(c.want) {
			t.Errorf("%s %s: %v, want %v", c.name, c.unit, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %s: %v, want %v", c.name, c.unit, got, c.want)
			}
		}
	}
	if len(s) != 2 {
		t.Errorf("%d benchmarks parsed, want 2: %v", len(s), s)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestCompareTwoCommits builds a module's benchmark at a commit and in the
// working tree, where it reports three times the figure, and finds the
// ratio.
func TestCompareTwoCommits(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("benchcmp needs git:", err)
	}
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(bytes.TrimSpace(out))
	}
	bench := func(widgets string) string {
		return "package w\n\nimport \"testing\"\n\nfunc BenchmarkWidgets(b *testing.B) {\n\tfor b.Loop() {\n\t}\n\tb.ReportMetric(" + widgets + ", \"widgets/op\")\n}\n"
	}
	write("go.mod", "module example.com/w\n\ngo 1.24\n")
	write("w_test.go", bench("2"))
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "two widgets")
	old := git("rev-parse", "HEAD")
	write("w_test.go", bench("6"))
	t.Chdir(dir)

	var stdout, stderr bytes.Buffer
	if err := run([]string{"-old", old, "-runs", "2", "."}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !regexp.MustCompile(`BenchmarkWidgets\s+widgets/op\s+2\s+6\s+3\.00×`).Match(stdout.Bytes()) {
		t.Errorf("report:\n%s\nwant BenchmarkWidgets widgets/op 2 6 3.00×", stdout.String())
	}
	if got := bytes.Count(stderr.Bytes(), []byte("run ")); got != 4 {
		t.Errorf("%d runs, want 2 of each:\n%s", got, stderr.String())
	}
}
