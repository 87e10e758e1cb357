// Command personad receives Persona's signed inquiry webhooks, keeps every
// authentic event exactly once in one SQLite file, folds them in event-time
// order and answers "may this user proceed?" over a query API.
//
// Usage:
//
//	personad <command> [flags]
//
// Run "personad help" for the commands and "personad <command> -h" for
// their flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// command is one subcommand: it parses its flags, then runs.
type command interface {
	ParseFlags(args []string) error
	Run(ctx context.Context) error
}

type commandInfo struct {
	name, summary string
	make          func(stdout, stderr io.Writer) command
}

var commands = []commandInfo{
	{"serve", "receive webhooks and serve the query API", func(o, e io.Writer) command { return NewServe(o, e) }},
	{"send", "sign and post JSON files, or built-in example events, as Persona does", func(o, e io.Writer) command { return &sendCommand{stdout: o, stderr: e} }},
	{"bench", "load-test a daemon with Persona-like webhooks and verify the result", func(o, e io.Writer) command { return newBench(o, e) }},
	{"inquiry", "print an inquiry's projection, or a user's inquiries, from a database", func(o, e io.Writer) command { return &inquiryCommand{stdout: o} }},
	{"events", "print an inquiry's event history from a database", func(o, e io.Writer) command { return &inquiryCommand{stdout: o, events: true} }},
	{"notify", "list the notify endpoints' cursors and state, or resume a parked one", func(o, e io.Writer) command { return &notifyCommand{stdout: o} }},
	{"reconcile", "fetch from Persona's REST API the events webhooks missed, and report status drift", func(o, e io.Writer) command { return &reconcileCommand{stdout: o, stderr: e} }},
	{"backfill", "import the inquiries created before personad was deployed, from Persona's REST API", func(o, e io.Writer) command { return &backfillCommand{stdout: o, stderr: e} }},
	{"rebuild", "re-derive every projection from the event log", func(o, e io.Writer) command { return &rebuildCommand{stdout: o} }},
	{"retain", "scrub personal data from old event bodies, keeping the log skeleton", func(o, e io.Writer) command { return &retainCommand{stdout: o, stderr: e} }},
	{"dead-letters", "list the authentic bodies personad could not read", func(o, e io.Writer) command { return &deadLettersCommand{stdout: o} }},
	{"replay", "ingest dead letters again, after an upgrade taught personad to read them", func(o, e io.Writer) command { return &replayCommand{stdout: o} }},
	{"verify", "check the event log's hash chain and every projection", func(o, e io.Writer) command { return &verifyCommand{stdout: o} }},
	{"graph", "print the inquiry lifecycle graph", func(o, e io.Writer) command { return &graphCommand{stdout: o} }},
	{"version", "print the version", func(o, e io.Writer) command { return &versionCommand{stdout: o} }},
}

func main() { os.Exit(mainExit(os.Args[1:])) }

// mainExit is main but for the exit: it runs the command line args with
// SIGINT and SIGTERM ending the command's context (serve also handles
// SIGHUP), and returns the exit code. The tests run it in a child process.
func mainExit(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		args = append([]string{"version"}, args[1:]...)
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		cmd := c.make(stdout, stderr)
		if err := cmd.ParseFlags(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, formatError(err))
			return 2
		}
		if err := cmd.Run(ctx); err != nil {
			fmt.Fprintln(stderr, formatError(err))
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "Error: unknown command %q\nTry: personad help\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "personad receives Persona inquiry webhooks and answers what each inquiry's state is.")
	fmt.Fprintln(w, "\nUsage:\n  personad <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'personad <command> -h' for a command's flags.")
}

// flagGiven reports whether the command line set the flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// openExistingReadOnly opens, for reading alongside a running serve, the
// database at path, which must exist.
func openExistingReadOnly(path string) (*store.DB, error) {
	if err := existingDB(path); err != nil {
		return nil, err
	}
	return store.OpenReadOnly(path)
}

// policyToUse returns the policy a command folds with: the one the file
// records, unless -auto-decide was given (given) or none is recorded,
// then the flag's; and what the file records.
func policyToUse(ctx context.Context, db *store.DB, given, autoDecide bool) (use, stored engine.Policy, recorded bool, err error) {
	if stored, recorded, err = db.StoredPolicy(ctx); err != nil {
		return engine.Policy{}, engine.Policy{}, false, err
	}
	use = stored
	if given || !recorded {
		use = engine.Policy{AutoDecide: autoDecide}
	}
	return use, stored, recorded, nil
}

// existingDB fails when there is no database file at path: the commands
// that work on an existing database must never create an empty one.
func existingDB(path string) error {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("no database at %s", path)
		}
		return withHint(err, "-db FILE, the database personad serve uses")
	}
	return nil
}

// hintError is an error with advice for the operator.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error { return &hintError{err, hint} }

// formatError prints "Error: … / Try: …" in the manner of litestream.
func formatError(err error) string {
	var h *hintError
	if errors.As(err, &h) {
		return "Error: " + err.Error() + "\nTry: " + h.hint
	}
	return "Error: " + err.Error()
}

// newFlagSet returns a flag set that prints usage to w and returns errors.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: personad %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}
