package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/personad/personad/internal/loadgen"
	"github.com/personad/personad/server"
)

// sendCommand signs bodies as Persona does and posts them: JSON files, or
// built-in examples (the bench generator's bodies, embedded in the
// binary) with fresh ids and times, for a development loop that needs no
// file of the repository.
type sendCommand struct {
	stdout, stderr io.Writer
	url, secretEnv string
	files          []string
	example        string
	inquiry        string
	referenceID    string
	interval       time.Duration
	listExamples   bool
	getenv         func(string) string
	now            func() time.Time
}

// outgoing is one body to post, and what to call it in the output.
type outgoing struct {
	label string
	body  []byte
}

func (c *sendCommand) ParseFlags(args []string) error {
	fs := newFlagSet("send", "send [-url URL] [-secret-env NAME] (FILE... | -example NAME [-inquiry ID] | -list-examples)", c.stdout)
	fs.StringVar(&c.url, "url", "http://localhost:8080"+server.WebhookPath, "webhook URL to post to")
	fs.StringVar(&c.secretEnv, "secret-env", "PERSONAD_WEBHOOK_SECRETS", "environment variable holding the webhook secret (the first of a comma-separated list)")
	fs.StringVar(&c.example, "example", "", "send a built-in example event of this name (see -list-examples), with fresh ids and the time now")
	fs.StringVar(&c.inquiry, "inquiry", "", "send the whole history of the inquiry with this id, in order, up to the -example event (default inquiry.approved), the last one created now")
	fs.StringVar(&c.referenceID, "reference-id", "", "the reference id (your user id) the example inquiry carries; a made-up one when empty")
	fs.DurationVar(&c.interval, "interval", 0, "pause between the events of a history, to watch a long poll or a push follow it")
	fs.BoolVar(&c.listExamples, "list-examples", false, "print the names -example takes, and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.files = fs.Args()
	switch {
	case c.listExamples:
		return nil
	case (c.example != "" || c.inquiry != "") && len(c.files) > 0:
		return withHint(errors.New("-example and -inquiry send built-in bodies, not files"), "personad send -example inquiry.approved, or personad send FILE...")
	case c.example != "" && !slices.Contains(loadgen.Examples(), c.example):
		return withHint(fmt.Errorf("no example event %q", c.example), "personad send -list-examples")
	case c.example == "" && c.inquiry == "" && len(c.files) == 0:
		return withHint(errors.New("nothing to send"), "personad send -example inquiry.approved (or -list-examples, or FILE...)")
	}
	return nil
}

func (c *sendCommand) Run(ctx context.Context) error {
	if c.listExamples {
		for _, name := range loadgen.Examples() {
			fmt.Fprintln(c.stdout, name)
		}
		return nil
	}
	getenv, now := c.getenv, c.now
	if getenv == nil {
		getenv = os.Getenv
	}
	if now == nil {
		now = time.Now
	}
	secret, _, _ := strings.Cut(getenv(c.secretEnv), ",")
	if secret = strings.TrimSpace(secret); secret == "" {
		return withHint(fmt.Errorf("%s is empty", c.secretEnv), "export "+c.secretEnv+"=wbhsec_... (the secret personad serve verifies with)")
	}
	deliveries, err := c.deliveries(now())
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	failed := 0
	for i, d := range deliveries {
		if i > 0 && c.interval > 0 {
			select {
			case <-time.After(c.interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(d.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(d.body, time.Now(), []byte(secret)))
		req.Header.Set("Persona-Webhook-Attempts-Made", "1")
		req.Header.Set("Persona-Webhook-Attempts-Left", "7")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", d.label, err)
		}
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		fmt.Fprintf(c.stdout, "%s: %s %s\n", d.label, resp.Status, bytes.TrimSpace(out))
		if resp.StatusCode/100 != 2 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries were not accepted", failed, len(deliveries))
	}
	return nil
}

// deliveries reads the files, or renders the example: its last event
// alone, or with -inquiry the whole history up to it.
func (c *sendCommand) deliveries(now time.Time) ([]outgoing, error) {
	if c.example == "" && c.inquiry == "" {
		out := make([]outgoing, len(c.files))
		for i, f := range c.files {
			body, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out[i] = outgoing{f, body}
		}
		return out, nil
	}
	name := c.example
	if name == "" {
		name = "inquiry.approved"
	}
	events, err := loadgen.Example(loadgen.ExampleConfig{
		Name: name, InquiryID: c.inquiry, ReferenceID: c.referenceID,
		End: now.UTC().Truncate(time.Millisecond), Seed: rand.Uint64(),
	})
	if err != nil {
		return nil, err
	}
	if c.inquiry == "" {
		events = events[len(events)-1:]
	}
	out := make([]outgoing, len(events))
	for i, ev := range events {
		out[i] = outgoing{fmt.Sprintf("%s %s (%s)", ev.Name, ev.ID, ev.Inquiry.ID), ev.Body}
	}
	return out, nil
}
