package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/personad/personad/server"
)

type sendCommand struct {
	stdout, stderr io.Writer
	url, secretEnv string
	files          []string
	getenv         func(string) string
}

func (c *sendCommand) ParseFlags(args []string) error {
	fs := newFlagSet("send", "send -url URL [-secret-env NAME] FILE...", c.stdout)
	fs.StringVar(&c.url, "url", "http://localhost:8080"+server.WebhookPath, "webhook URL to post to")
	fs.StringVar(&c.secretEnv, "secret-env", "PERSONAD_WEBHOOK_SECRETS", "environment variable holding the webhook secret (the first of a comma-separated list)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.files = fs.Args()
	if len(c.files) == 0 {
		return withHint(errors.New("no files to send"), "personad send -url URL testdata/events/inquiry.approved.json")
	}
	return nil
}

func (c *sendCommand) Run(ctx context.Context) error {
	getenv := c.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	secret, _, _ := strings.Cut(getenv(c.secretEnv), ",")
	if secret = strings.TrimSpace(secret); secret == "" {
		return withHint(fmt.Errorf("%s is empty", c.secretEnv), "export "+c.secretEnv+"=wbhsec_... (the secret personad serve verifies with)")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	failed := 0
	for _, f := range c.files {
		body, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), []byte(secret)))
		req.Header.Set("Persona-Webhook-Attempts-Made", "1")
		req.Header.Set("Persona-Webhook-Attempts-Left", "7")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		fmt.Fprintf(c.stdout, "%s: %s %s\n", f, resp.Status, bytes.TrimSpace(out))
		if resp.StatusCode/100 != 2 {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d deliveries were not accepted", failed, len(c.files))
	}
	return nil
}
