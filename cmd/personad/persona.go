package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/personad/personad/internal/persona"
)

// envPersonaKey holds the Persona API key, a secret of its own: it reads
// Persona's API, where the webhook secrets only check Persona's signature.
const envPersonaKey = "PERSONA_API_KEY"

// personaFlags configure the Persona API client of serve, reconcile and
// backfill. The key comes from the environment or a file, never a flag.
type personaFlags struct {
	api     string
	keyFile string
	rate    int
	key     string // read by load
}

func (p *personaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.api, "persona-api", persona.DefaultBaseURL, "Persona's REST API origin")
	fs.StringVar(&p.keyFile, "persona-api-key-file", "", "file holding the Persona API key (else $"+envPersonaKey+"); a secret of its own, separate from the webhook secrets")
	fs.IntVar(&p.rate, "persona-rate", persona.DefaultRatePerMinute, "most requests per minute sent to Persona's API (0: no limit of personad's own; Persona's 429s and RateLimit headers are obeyed either way)")
}

// load reads the API key. Without one it fails when required, and else
// leaves the key empty (serve then does not reconcile).
func (p *personaFlags) load(getenv func(string) string, required bool) error {
	if p.rate < 0 {
		return withHint(fmt.Errorf("-persona-rate %d is negative", p.rate), "-persona-rate 300 (Persona's default limit per minute), or 0 for none")
	}
	key, err := persona.LoadAPIKey(getenv, p.keyFile)
	switch {
	case errors.Is(err, persona.ErrNoAPIKey) && !required:
		return nil
	case errors.Is(err, persona.ErrNoAPIKey):
		return withHint(errors.New("no Persona API key configured: reconciliation reads Persona's REST API"),
			"export "+envPersonaKey+"=persona_production_... (a key with read access to inquiries and events), or pass -persona-api-key-file FILE")
	case err != nil:
		return err
	}
	p.key = key
	return nil
}

// client returns the API client, logging failed attempts to logger.
func (p *personaFlags) client(logger *slog.Logger) (*persona.Client, error) {
	rate := float64(p.rate)
	if p.rate == 0 {
		rate = -1 // the client's "no limit"
	}
	return persona.New(persona.Config{BaseURL: p.api, APIKey: p.key, RatePerMinute: rate, Logger: logger})
}
