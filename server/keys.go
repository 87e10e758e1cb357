package server

import (
	"errors"
	"slices"
	"sync/atomic"
)

// Keys holds the credentials a running server checks requests against: the
// webhook secrets and the API bearer token. They can be replaced while the
// server runs (personad serve does on SIGHUP); a request reads them once,
// so it is checked against either the old set or the new one, never a mix.
// Give the same *Keys to WebhookConfig.Keys and APIConfig.Keys. The zero
// value holds nothing; use NewKeys.
type Keys struct {
	v atomic.Pointer[keyValues]
}

type keyValues struct {
	secrets [][]byte
	token   string
}

// ErrNoToken is returned by SetToken for an empty token: an API started
// with a token must never become open because a reload read nothing.
var ErrNoToken = errors.New("empty API token")

// NewKeys returns Keys holding secrets and token ("" for an API without
// one). Errors: ErrNoSecret when secrets is empty or holds an empty one.
func NewKeys(secrets [][]byte, token string) (*Keys, error) {
	if err := checkSecrets(secrets); err != nil {
		return nil, err
	}
	k := &Keys{}
	k.v.Store(&keyValues{secrets: cloneSecrets(secrets), token: token})
	return k, nil
}

// Secrets returns the webhook secrets currently accepted. The caller must
// not change them.
func (k *Keys) Secrets() [][]byte {
	if v := k.v.Load(); v != nil {
		return v.secrets
	}
	return nil
}

// Token returns the API token currently required ("" for none).
func (k *Keys) Token() string {
	if v := k.v.Load(); v != nil {
		return v.token
	}
	return ""
}

// Set replaces both the secrets and the token at once, keeping the old
// values when either is refused. Errors: ErrNoSecret, ErrNoToken (an empty
// token where one was set: a reload cannot take the API's token away).
func (k *Keys) Set(secrets [][]byte, token string) error {
	if err := checkSecrets(secrets); err != nil {
		return err
	}
	if token == "" && k.Token() != "" {
		return ErrNoToken
	}
	k.v.Store(&keyValues{secrets: cloneSecrets(secrets), token: token})
	return nil
}

func checkSecrets(secrets [][]byte) error {
	if len(secrets) == 0 || slices.ContainsFunc(secrets, func(s []byte) bool { return len(s) == 0 }) {
		return ErrNoSecret
	}
	return nil
}

// cloneSecrets copies secrets, so that a caller reusing its slice cannot
// change what requests are checked against.
func cloneSecrets(secrets [][]byte) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = slices.Clone(s)
	}
	return out
}

// currentVerifier returns a Verifier with the secrets of the moment; a
// request takes it once, so it is checked against one set of secrets.
func (h *webhookHandler) currentVerifier() Verifier {
	v := h.verifier
	if h.cfg.Keys != nil {
		v.Secrets = h.cfg.Keys.Secrets()
	}
	return v
}

// token returns the API token of the moment.
func (a *api) token() string {
	if a.cfg.Keys != nil {
		return a.cfg.Keys.Token()
	}
	return a.cfg.Token
}
