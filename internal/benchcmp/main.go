// Command benchcmp runs a package's Go benchmarks from two commits
// interleaved, on the same machine in one invocation, and prints each
// metric's median per commit and the ratio new/old, so that a figure in
// BENCHMARKS.md is a ratio measured side by side rather than two numbers
// from two noisy moments.
//
//	go run ./internal/benchcmp -old a973d1b -bench 'BenchmarkIngestRealistic/conc=64' -runs 3 ./store
//
// It builds the package's test binary from the working tree (new) and from
// -old (extracted with git archive into a temporary directory), then runs
// them -runs times each, alternating which goes first, with -benchtime
// and one -count per run, with -benchmem. Benchmarks the old code lacks show only new
// figures.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchcmp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	old := fs.String("old", "", "the commit to compare against (required)")
	bench := fs.String("bench", ".", "benchmarks to run (go test -bench)")
	benchtime := fs.String("benchtime", "1x", "go test -benchtime of each run")
	runs := fs.Int("runs", 3, "runs of each binary; the medians of these are compared")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *old == "" || fs.NArg() != 1 || *runs < 1 {
		return errors.New("usage: benchcmp -old COMMIT [-bench RE] [-benchtime 1x] [-runs 3] ./package")
	}
	pkg := fs.Arg(0)
	root, err := gitOutput("", "rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchcmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	oldTree := filepath.Join(tmp, "old")
	if err := extract(root, *old, oldTree); err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, filepath.Join(cwd, pkg))
	if err != nil {
		return err
	}
	bins := [2]binary{
		{name: "old", dir: filepath.Join(oldTree, rel), path: filepath.Join(tmp, "old.test")},
		{name: "new", dir: filepath.Join(root, rel), path: filepath.Join(tmp, "new.test")},
	}
	for _, b := range bins {
		fmt.Fprintf(stderr, "building %s (%s)\n", b.name, b.dir)
		if err := build(b); err != nil {
			return err
		}
	}
	results := [2]samples{{}, {}}
	for i := range *runs {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, j := range order {
			fmt.Fprintf(stderr, "run %d/%d: %s\n", i+1, *runs, bins[j].name)
			out, err := runBench(bins[j], *bench, *benchtime)
			if err != nil {
				return err
			}
			if err := results[j].parse(out); err != nil {
				return err
			}
		}
	}
	return report(stdout, *old, *runs, results)
}

// binary is one side's test binary and the directory it runs in (its
// package's, so that testdata resolves as under go test).
type binary struct{ name, dir, path string }

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// extract writes commit's tree into dir with git archive.
func extract(root, commit, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", "archive", "--format=tar", commit)
	archive.Dir = root
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var archiveErr, untarErr bytes.Buffer // each written by its own process's copier
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", commit, err, archiveErr.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("untar %s: %w: %s", commit, err, untarErr.String())
	}
	return nil
}

func build(b binary) error {
	cmd := exec.Command("go", "test", "-c", "-o", b.path, ".")
	cmd.Dir = b.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", b.name, err, out)
	}
	return nil
}

func runBench(b binary, bench, benchtime string) ([]byte, error) {
	cmd := exec.Command(b.path, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime, "-test.count", "1", "-test.benchmem")
	cmd.Dir = b.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w\n%s", b.name, err, out)
	}
	return out, nil
}

// samples are the values seen per benchmark and unit, in run order.
type samples map[string]map[string][]float64

// parse adds the figures of go test -bench output: lines of a benchmark
// name, an iteration count and value-unit pairs.
func (s samples) parse(out []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := trimProcs(f[0])
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			if s[name] == nil {
				s[name] = map[string][]float64{}
			}
			s[name][f[i+1]] = append(s[name][f[i+1]], v)
		}
	}
	return sc.Err()
}

// trimProcs drops the -GOMAXPROCS suffix go test adds to a name.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func report(w io.Writer, old string, runs int, r [2]samples) error {
	fmt.Fprintf(w, "medians of %d interleaved runs; ratio is new/old (old: %s)\n", runs, old)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tunit\told\tnew\tnew/old\t")
	names := make([]string, 0, len(r[1]))
	for name := range r[1] {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		units := make([]string, 0, len(r[1][name]))
		for u := range r[1][name] {
			units = append(units, u)
		}
		slices.Sort(units)
		for _, u := range units {
			nv := median(r[1][name][u])
			ov, ratio := "-", "-"
			if o := r[0][name][u]; len(o) > 0 {
				om := median(o)
				ov = strconv.FormatFloat(om, 'g', 5, 64)
				if om != 0 {
					ratio = strconv.FormatFloat(nv/om, 'f', 2, 64) + "×"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", name, u, ov, strconv.FormatFloat(nv, 'g', 5, 64), ratio)
		}
	}
	return tw.Flush()
}
