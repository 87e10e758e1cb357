package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// byteOrderMark is U+FEFF, which some editors put at the start of a
// UTF-8 file; it is never part of a secret or a token.
const byteOrderMark = "\ufeff"

// parseLogLevel reads -log-level.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown -log-level %q", s)
}

// Reload rereads the webhook secrets file and the API token file, those
// of them that were given, and swaps what requests are checked against,
// both at once; requests in flight finish with the old values. When a
// file cannot be read or holds nothing, nothing changes and the error is
// logged and returned. Secrets or a token from the environment stay as
// they are: a running process's environment cannot change. Serve.Run
// calls Reload on SIGHUP. It logs counts, never values.
func (s *Serve) Reload() error {
	if s.secretsFile == "" && s.tokenFile == "" {
		s.logger.Warn("reload: nothing to reread: the secrets and the token come from the environment, which a running process cannot change; restart personad to change them")
		return nil
	}
	secrets, token := s.keys.Secrets(), s.keys.Token()
	var err error
	if s.secretsFile != "" {
		if secrets, err = readSecrets(s.Getenv, s.secretsFile); err != nil {
			return s.reloadFailed(err)
		}
	}
	if s.tokenFile != "" {
		if token, err = readToken(s.Getenv, s.tokenFile); err != nil {
			return s.reloadFailed(err)
		}
	}
	if err := s.keys.Set(secrets, token); err != nil {
		return s.reloadFailed(err)
	}
	tokens := 0
	if token != "" {
		tokens = 1
	}
	s.logger.Info("reloaded the webhook secrets and the API token",
		"webhook_secrets", len(secrets), "webhook_secrets_from", source(s.secretsFile, true),
		"api_tokens", tokens, "api_token_from", source(s.tokenFile, token != ""))
	return nil
}

func (s *Serve) reloadFailed(err error) error {
	var h *hintError
	if errors.As(err, &h) {
		err = h.err // the hint speaks of starting, not reloading
	}
	s.logger.Error("reload failed: still checking requests against the secrets and token in use", "err", err)
	return err
}

// source names where a credential came from, for the reload log line.
func source(file string, present bool) string {
	switch {
	case file != "":
		return "file"
	case present:
		return "environment"
	}
	return "none"
}
