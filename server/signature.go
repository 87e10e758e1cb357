package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header Persona signs each webhook request with.
const SignatureHeader = "Persona-Signature"

// Why a signature check failed; also the values of the metric's reason label.
const (
	ReasonMissing   = "missing"
	ReasonMalformed = "malformed"
	ReasonExpired   = "expired"
	ReasonMismatch  = "mismatch"
)

// SignatureError says why a request is not authentic.
type SignatureError struct{ Reason string }

func (e *SignatureError) Error() string {
	switch e.Reason {
	case ReasonMissing:
		return "missing " + SignatureHeader + " header"
	case ReasonMalformed:
		return "malformed " + SignatureHeader + " header: want t=<unix seconds>,v1=<hex HMAC-SHA256>"
	case ReasonExpired:
		return "signature timestamp outside the accepted tolerance"
	}
	return "signature does not match"
}

// SignatureSet is one t=…,v1=… set of a Persona-Signature header; during a
// secret rotation the header holds two, separated by a space.
type SignatureSet struct {
	Timestamp int64
	V1        []string
}

// maxSets bounds the work one header can ask for.
const maxSets = 8

// ParseSignature reads a Persona-Signature header. Sets without a usable t
// or v1 are skipped; a header with no usable set is malformed. At most
// eight sets are read, and at most eight v1 values in each.
func ParseSignature(header string) ([]SignatureSet, error) {
	if strings.TrimSpace(header) == "" {
		return nil, &SignatureError{ReasonMissing}
	}
	var sets []SignatureSet
	for _, field := range strings.Fields(header) {
		if len(sets) == maxSets {
			break
		}
		var set SignatureSet
		haveT := false
		for _, kv := range strings.Split(field, ",") {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case !ok:
			case k == "t":
				ts, err := strconv.ParseInt(v, 10, 64)
				if err == nil && ts > 0 {
					set.Timestamp, haveT = ts, true
				}
			case k == "v1" && v != "" && len(set.V1) < maxSets:
				set.V1 = append(set.V1, v)
			}
		}
		if haveT && len(set.V1) > 0 {
			sets = append(sets, set)
		}
	}
	if len(sets) == 0 {
		return nil, &SignatureError{ReasonMalformed}
	}
	return sets, nil
}

// Verifier checks Persona signatures against the configured secrets.
type Verifier struct {
	Secrets   [][]byte      // every secret currently accepted
	Tolerance time.Duration // accepted |now − t|
}

// Fresh reads a Persona-Signature header and returns its sets whose
// timestamp is within the tolerance of now: what can be checked before the
// body is read, so that a request that can never verify costs no body
// read. It returns a *SignatureError (missing, malformed or expired)
// when there is no such set.
func (v *Verifier) Fresh(header string, now time.Time) ([]SignatureSet, error) {
	sets, err := ParseSignature(header)
	if err != nil {
		return nil, err
	}
	fresh := sets[:0:0]
	for _, set := range sets {
		age := now.Sub(time.Unix(set.Timestamp, 0))
		if age <= v.Tolerance && age >= -v.Tolerance {
			fresh = append(fresh, set)
		}
	}
	if len(fresh) == 0 {
		return nil, &SignatureError{ReasonExpired}
	}
	return fresh, nil
}

// VerifyFresh accepts body when any of sets (from Fresh) verifies under any
// secret, computed over the raw body with that set's own timestamp. It
// returns a *SignatureError with reason mismatch otherwise.
func (v *Verifier) VerifyFresh(sets []SignatureSet, body []byte) error {
	for _, set := range sets {
		ts := strconv.FormatInt(set.Timestamp, 10)
		for _, secret := range v.Secrets {
			want := Sign(secret, ts, body)
			for _, got := range set.V1 {
				if hmac.Equal([]byte(want), []byte(strings.ToLower(got))) {
					return nil
				}
			}
		}
	}
	return &SignatureError{ReasonMismatch}
}

// Verify accepts the request when any set of the header verifies under any
// secret, computed over the raw body with that set's own timestamp, within
// the tolerance both ways: Fresh, then VerifyFresh. It returns a
// *SignatureError otherwise.
func (v *Verifier) Verify(header string, body []byte, now time.Time) error {
	sets, err := v.Fresh(header, now)
	if err != nil {
		return err
	}
	return v.VerifyFresh(sets, body)
}

// Sign returns the lowercase hex HMAC-SHA256 of "<timestamp>.<body>" under
// secret, as Persona computes v1.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// SignatureHeaderValue returns a Persona-Signature value signing body at t
// under each secret, one set per secret (as during a rotation).
func SignatureHeaderValue(body []byte, t time.Time, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	sets := make([]string, len(secrets))
	for i, s := range secrets {
		sets[i] = "t=" + ts + ",v1=" + Sign(s, ts, body)
	}
	return strings.Join(sets, " ")
}

// IsSignatureError reports whether err is a *SignatureError and returns it.
func IsSignatureError(err error) (*SignatureError, bool) {
	var se *SignatureError
	ok := errors.As(err, &se)
	return se, ok
}
