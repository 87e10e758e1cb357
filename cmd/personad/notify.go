package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/notify"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

const envNotifySecret = "PERSONAD_NOTIFY_SECRET"

// notifyFlags are serve's flags for pushing the change feed.
type notifyFlags struct {
	urls       []string
	secretFile string
	giveUp     time.Duration
	backoff    time.Duration
	from       string
	key        []byte
}

// register adds the flags to fs.
func (n *notifyFlags) register(fs *flag.FlagSet) {
	fs.Func("notify-url", "post every change of the change feed to this URL as a signed Standard Webhooks message (may be given several times); needs $"+envNotifySecret+" or -notify-secret-file",
		func(u string) error {
			if err := notify.CheckURL(u); err != nil {
				return err
			}
			n.urls = append(n.urls, u)
			return nil
		})
	fs.StringVar(&n.secretFile, "notify-secret-file", "", "file holding the notify signing secret, whsec_ and base64 (else $"+envNotifySecret+")")
	fs.DurationVar(&n.giveUp, "notify-give-up", notify.DefaultGiveUp, "park an endpoint that has failed for this long (personad notify -resume resumes it)")
	fs.DurationVar(&n.backoff, "notify-backoff", notify.DefaultMinBackoff, "wait before the first retry of a failed notification; doubled for each next one, up to 10m, with jitter")
	fs.StringVar(&n.from, "notify-from", "head", "where an endpoint the database does not know yet starts: head (only changes from now on) or start (the whole feed)")
}

// check validates the flags and reads the secret when there is an URL.
func (n *notifyFlags) check(getenv func(string) string) error {
	switch {
	case n.from != "head" && n.from != "start":
		return withHint(fmt.Errorf("unknown -notify-from %q", n.from), "-notify-from head (or start)")
	case n.giveUp <= 0 || n.backoff <= 0:
		return withHint(errors.New("-notify-give-up and -notify-backoff must be positive"), "-notify-give-up 72h -notify-backoff 1s")
	case len(n.urls) == 0:
		return nil
	}
	raw := getenv(envNotifySecret)
	if n.secretFile != "" {
		b, err := os.ReadFile(n.secretFile)
		if err != nil {
			return fmt.Errorf("-notify-secret-file: %w", err)
		}
		raw = string(b)
	}
	hint := "export " + envNotifySecret + `="whsec_$(openssl rand -base64 32)" (the application verifies with the same secret), or pass -notify-secret-file FILE`
	if strings.TrimSpace(strings.TrimPrefix(raw, byteOrderMark)) == "" {
		return withHint(errors.New("-notify-url without a notify secret: personad signs every notification"), hint)
	}
	key, err := notify.ParseSecret(raw)
	if err != nil {
		return withHint(err, hint)
	}
	n.key = key
	return nil
}

// start starts pushing to the URLs, if any, with its metrics on m.
func (n *notifyFlags) start(s *Serve, eng *engine.Engine, m *server.Metrics) (*notify.Notifier, error) {
	if len(n.urls) == 0 {
		return nil, nil
	}
	nt, err := notify.Start(context.Background(), notify.Config{
		Engine: eng, DB: s.db, URLs: n.urls, Key: n.key, FromStart: n.from == "start",
		GiveUp: n.giveUp, MinBackoff: n.backoff, UserAgent: "personad/" + Version(), Logger: s.logger,
	})
	if err != nil {
		return nil, err
	}
	m.Registry.MustRegister(nt.Collector())
	eps := make([]string, len(n.urls))
	for i, u := range n.urls {
		eps[i] = notify.Redact(u)
	}
	s.logger.Info("pushing the change feed", "endpoints", eps, "give_up", n.giveUp.String())
	return nt, nil
}

// notifyCommand is "personad notify": the endpoints' state, and -resume.
type notifyCommand struct {
	stdout io.Writer
	db     string
	resume string
}

func (c *notifyCommand) ParseFlags(args []string) error {
	fs := newFlagSet("notify", "notify -db FILE [-resume URL]", c.stdout)
	fs.StringVar(&c.db, "db", "personad.db", "the database personad serve uses")
	fs.StringVar(&c.resume, "resume", "", "resume a parked endpoint (exactly its -notify-url) from the change after its cursor; a running serve notices within seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func (c *notifyCommand) Run(ctx context.Context) error {
	if err := existingDB(c.db); err != nil {
		return err
	}
	if c.resume != "" {
		ep, err := store.ResumeNotifyEndpoint(ctx, c.db, c.resume)
		if errors.Is(err, store.ErrNoEndpoint) {
			return withHint(err, "personad notify -db "+c.db+" lists the endpoints; give the URL exactly as -notify-url was")
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.stdout, "resumed %s from the change after %d\n", notify.Redact(ep.URL), ep.Cursor)
		return err
	}
	db, err := openExistingReadOnly(c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	eps, err := db.NotifyEndpoints(ctx)
	if err != nil {
		return err
	}
	head, err := db.ChangesHead(ctx)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no notify endpoints (serve -notify-url URL adds one)")
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URL\tCURSOR\tBEHIND\tSTATE\tLAST DELIVERED")
	for _, e := range eps {
		state := "ok"
		switch {
		case e.Parked():
			state = "PARKED since " + engine.FormatTime(e.ParkedAt) + ": " + e.ParkedReason
		case !e.FailingSince.IsZero():
			state = "failing since " + engine.FormatTime(e.FailingSince) + ": " + e.LastError
		}
		last := "never"
		if !e.DeliveredAt.IsZero() {
			last = engine.FormatTime(e.DeliveredAt)
		}
		// Without its user info and query, as in the logs: this output is
		// often kept, and the operator has the whole URL in serve's flags.
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", notify.Redact(e.URL), e.Cursor, max(head-e.Cursor, 0), state, last)
	}
	return tw.Flush()
}
