package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/internal/reconcile"
	"github.com/personad/personad/store"
)

// reconcileCommand runs one reconciliation with Persona's REST API
// (personad reconcile): on a database no daemon holds (-db), or by asking
// a running serve to run one now (-api).
type reconcileCommand struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	db        string
	apiURL    string
	tokenFile string
	persona   personaFlags
	stale     time.Duration
	maxAge    time.Duration
	opts      reconcile.Options
	asJSON    bool
	token     string
}

func (c *reconcileCommand) ParseFlags(args []string) error {
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	fs := newFlagSet("reconcile", "reconcile -db FILE [flags] | reconcile -api URL [-inquiry ID...]", c.stderr)
	fs.StringVar(&c.db, "db", "personad.db", "database file, when no personad serve holds it")
	fs.StringVar(&c.apiURL, "api", "", "URL of a running personad serve's query API (e.g. http://127.0.0.1:8081): ask it to reconcile now instead of opening the database")
	fs.StringVar(&c.tokenFile, "api-token-file", "", "with -api: file holding its API token (else $"+envAPIToken+")")
	c.persona.register(fs)
	fs.DurationVar(&c.stale, "stale", reconcile.DefaultStale, "check the undecided inquiries with no event for longer than this")
	fs.DurationVar(&c.maxAge, "max-age", reconcile.DefaultMaxAge, "and not those quiet for longer than this (name them with -inquiry)")
	fs.Func("inquiry", "also check this inquiry, whatever its state (may be given several times)", func(id string) error {
		if id = strings.TrimSpace(id); id == "" {
			return errors.New("empty inquiry id")
		}
		c.opts.Inquiries = append(c.opts.Inquiries, id)
		return nil
	})
	fs.BoolVar(&c.opts.OnlyNamed, "only-named", false, "check only the -inquiry ones")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.opts.OnlyNamed && len(c.opts.Inquiries) == 0 {
		return withHint(errors.New("-only-named without -inquiry"), "-inquiry inq_... -only-named")
	}
	if c.apiURL != "" {
		for _, name := range []string{"db", "persona-api", "persona-api-key-file", "persona-rate", "stale", "max-age"} {
			if flagGiven(fs, name) {
				return withHint(fmt.Errorf("-%s does not go with -api: the running daemon reconciles with its own configuration", name),
					"personad reconcile -api "+c.apiURL+" [-inquiry ID...]")
			}
		}
		u, err := url.Parse(c.apiURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return withHint(fmt.Errorf("-api %q is not an http(s) URL", c.apiURL), "-api http://127.0.0.1:8081")
		}
		c.token, err = readToken(c.getenv, c.tokenFile)
		return err
	}
	if c.stale <= 0 || c.maxAge <= c.stale {
		return withHint(fmt.Errorf("-stale %v and -max-age %v: want 0 < stale < max-age", c.stale, c.maxAge), "-stale 1h -max-age 720h")
	}
	return c.persona.load(c.getenv, true)
}

// Run reconciles and prints the report. It fails when the run met an
// error (the report says which inquiries).
func (c *reconcileCommand) Run(ctx context.Context) error {
	var (
		rep reconcile.Report
		err error
	)
	if c.apiURL != "" {
		rep, err = c.remote(ctx)
	} else {
		rep, err = c.local(ctx)
	}
	if err != nil {
		return err
	}
	if err := printReport(c.stdout, rep, c.asJSON); err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("reconcile: %d inquiries could not be checked", len(rep.Errors))
	}
	return nil
}

// local reconciles the database itself, holding its write lock.
func (c *reconcileCommand) local(ctx context.Context) (reconcile.Report, error) {
	if err := existingDB(c.db); err != nil {
		return reconcile.Report{}, err
	}
	db, err := store.Open(c.db, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return reconcile.Report{}, withHint(err, "a personad serve holds the database: ask it with personad reconcile -api http://127.0.0.1:8081 (and its API token)")
	}
	if err != nil {
		return reconcile.Report{}, err
	}
	defer db.Close()
	rec, err := newReconciler(ctx, db, &c.persona, c.stale, c.maxAge, c.stderr, 0)
	if err != nil {
		return reconcile.Report{}, err
	}
	rep, err := rec.Run(ctx, c.opts)
	if err != nil && ctx.Err() == nil {
		// What the run did before it failed (not when interrupted).
		if perr := printReport(c.stdout, rep, c.asJSON); perr != nil {
			return rep, perr
		}
	}
	return rep, err
}

// newReconciler wires a reconciler for a command that opened db: the
// file's policy, the persona flags' client, WARN lines to w.
func newReconciler(ctx context.Context, db *store.DB, pf *personaFlags, stale, maxAge time.Duration, w io.Writer, workers int) (*reconcile.Reconciler, error) {
	p, _, _, err := policyToUse(ctx, db, false, false)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	client, err := pf.client(logger)
	if err != nil {
		return nil, err
	}
	return reconcile.New(reconcile.Config{Engine: engine.New(db, p), API: client, Logger: logger, Stale: stale, MaxAge: maxAge, Workers: workers})
}

// remote asks a running serve to reconcile now.
func (c *reconcileCommand) remote(ctx context.Context) (reconcile.Report, error) {
	body, err := json.Marshal(c.opts)
	if err != nil {
		return reconcile.Report{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.apiURL, "/")+"/v1/reconcile", bytes.NewReader(body))
	if err != nil {
		return reconcile.Report{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reconcile.Report{}, withHint(err, "is personad serve running, with its query API at -api?")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return reconcile.Report{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Message == "" {
			e.Error.Message = strings.TrimSpace(string(raw))
		}
		err := fmt.Errorf("POST /v1/reconcile: %s: %s", resp.Status, e.Error.Message)
		switch e.Error.Code {
		case "unauthorized":
			return reconcile.Report{}, withHint(err, "set "+envAPIToken+" or -api-token-file to the daemon's API token")
		case "not_configured":
			return reconcile.Report{}, withHint(err, "start personad serve with "+envPersonaKey+" or -persona-api-key-file")
		}
		return reconcile.Report{}, err
	}
	var rep reconcile.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return reconcile.Report{}, fmt.Errorf("POST /v1/reconcile: the answer is not a report: %w", err)
	}
	return rep, nil
}

// printReport prints a run's report: JSON, or a summary line and one line
// per recovered event, drift, inquiry beyond repair and error.
func printReport(w io.Writer, rep reconcile.Report, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "reconcile: %d inquiries checked, %d events recovered, %d drifts, %d beyond repair, %d errors (%s)\n",
		rep.Checked, rep.Recovered, len(rep.Drifts), len(rep.BeyondRepair), len(rep.Errors), rep.FinishedAt.Sub(rep.StartedAt).Round(time.Millisecond))
	for _, e := range rep.RecoveredEvents {
		fmt.Fprintf(&b, "recovered %s %s (inquiry %s)\n", e.EventID, e.Name, e.InquiryID)
	}
	for _, d := range rep.Drifts {
		fmt.Fprintf(&b, "drift %s: personad says %s, Persona says %s\n", d.InquiryID, orNone(d.Status), orNone(d.PersonaStatus))
	}
	for _, id := range rep.BeyondRepair {
		fmt.Fprintf(&b, "beyond repair %s: Persona has no events of it left and personad never received one\n", id)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "error %s: %s\n", e.InquiryID, e.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
