package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of the Standard Webhooks specification (standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret: whsec_ and the key in
// standard base64.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest key accepted: the specification asks for
// 24 to 64 bytes.
const MinSecretBytes = 24

// ParseSecret decodes a Standard Webhooks secret, "whsec_" and the key in
// standard base64 (the prefix may be left out, as the specification's
// libraries allow), into the HMAC key. Errors say what is wrong without
// repeating the secret.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, "\ufeff"))
	if s == "" {
		return nil, errors.New("the notify secret is empty")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return nil, errors.New("the notify secret is not " + SecretPrefix + " followed by standard base64")
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("the notify secret's key is %d bytes; the Standard Webhooks specification asks for %d to 64", len(key), MinSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature value for a message: "v1," and the
// base64 HMAC-SHA256, with key, of "id.timestamp.body" (timestamp in unix
// seconds).
func Sign(key []byte, id string, at time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, at.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// setHeaders sets the three Standard Webhooks headers of a message.
func setHeaders(h http.Header, key []byte, id string, at time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, Sign(key, id, at, body))
}

// MessageID is the webhook-id of the change with seq: the same on every
// attempt, so receivers deduplicate by it.
func MessageID(seq int64) string { return "chg_" + strconv.FormatInt(seq, 10) }
