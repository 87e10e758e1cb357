package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// attemptAttrs returns Persona's retry headers as log attributes holding
// numbers. A header that is absent or not a whole number is left out, so
// that each field has one type for whatever indexes the JSON logs.
func attemptAttrs(h http.Header) []any {
	var attrs []any
	for _, f := range []struct{ header, key string }{
		{"Persona-Webhook-Attempts-Made", "attempts_made"},
		{"Persona-Webhook-Attempts-Left", "attempts_left"},
		{"Persona-Webhook-First-Attempted-At", "first_attempted_at"}, // unix seconds
	} {
		if n, err := strconv.ParseInt(strings.TrimSpace(h.Get(f.header)), 10, 64); err == nil {
			attrs = append(attrs, slog.Int64(f.key, n))
		}
	}
	return attrs
}
