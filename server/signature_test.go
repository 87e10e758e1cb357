package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/personad/personad/server"
)

var (
	secretA = []byte("wbhsec_current")
	secretB = []byte("wbhsec_next")
	now     = time.Unix(1_700_000_000, 0)
)

func TestVerify(t *testing.T) {
	body := []byte(`{"data":{"id":"evt_1"}}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	future := strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)
	sigA := server.Sign(secretA, ts, body)
	sigB := server.Sign(secretB, ts, body)
	tests := []struct {
		name    string
		secrets [][]byte
		header  string
		body    []byte
		reason  string // "" means accepted
	}{
		{"valid", [][]byte{secretA}, "t=" + ts + ",v1=" + sigA, body, ""},
		{"uppercase hex", [][]byte{secretA}, "t=" + ts + ",v1=" + strings.ToUpper(sigA), body, ""},
		{"rotation, second set matches", [][]byte{secretB}, "t=" + ts + ",v1=" + sigA + " t=" + ts + ",v1=" + sigB, body, ""},
		{"rotation, first set matches", [][]byte{secretA}, "t=" + ts + ",v1=" + sigA + " t=" + ts + ",v1=" + sigB, body, ""},
		{"several local secrets", [][]byte{[]byte("wbhsec_other"), secretB}, "t=" + ts + ",v1=" + sigB, body, ""},
		{"each set uses its own t", [][]byte{secretB}, "t=" + old + ",v1=" + sigA + " t=" + ts + ",v1=" + sigB, body, ""},
		{"missing", [][]byte{secretA}, "", body, server.ReasonMissing},
		{"no v1", [][]byte{secretA}, "t=" + ts, body, server.ReasonMalformed},
		{"no t", [][]byte{secretA}, "v1=" + sigA, body, server.ReasonMalformed},
		{"t not a number", [][]byte{secretA}, "t=abc,v1=" + sigA, body, server.ReasonMalformed},
		{"garbage", [][]byte{secretA}, "Bearer xyz", body, server.ReasonMalformed},
		{"non-hex v1", [][]byte{secretA}, "t=" + ts + ",v1=zzzz", body, server.ReasonMismatch},
		{"short v1", [][]byte{secretA}, "t=" + ts + ",v1=" + sigA[:10], body, server.ReasonMismatch},
		{"wrong secret", [][]byte{[]byte("wbhsec_wrong")}, "t=" + ts + ",v1=" + sigA, body, server.ReasonMismatch},
		{"body changed by one byte", [][]byte{secretA}, "t=" + ts + ",v1=" + sigA, []byte(`{"data":{"id":"evt_2"}}`), server.ReasonMismatch},
		{"signature of another t", [][]byte{secretA}, "t=" + strconv.FormatInt(now.Unix()-1, 10) + ",v1=" + sigA, body, server.ReasonMismatch},
		{"replayed old signature", [][]byte{secretA}, "t=" + old + ",v1=" + server.Sign(secretA, old, body), body, server.ReasonExpired},
		{"future timestamp", [][]byte{secretA}, "t=" + future + ",v1=" + server.Sign(secretA, future, body), body, server.ReasonExpired},
		{"two sets, neither matches", [][]byte{secretA}, "t=" + ts + ",v1=" + sigB + " t=" + ts + ",v1=" + server.Sign([]byte("x"), ts, body), body, server.ReasonMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := server.Verifier{Secrets: tt.secrets, Tolerance: 5 * time.Minute}
			err := v.Verify(tt.header, tt.body, now)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			se, ok := server.IsSignatureError(err)
			if !ok || se.Reason != tt.reason {
				t.Fatalf("Verify = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestSignatureHeaderValue(t *testing.T) {
	body := []byte(`{}`)
	h := server.SignatureHeaderValue(body, now, secretA, secretB)
	for _, s := range [][]byte{secretA, secretB} {
		v := server.Verifier{Secrets: [][]byte{s}, Tolerance: time.Minute}
		if err := v.Verify(h, body, now); err != nil {
			t.Errorf("header %q does not verify under %s: %v", h, s, err)
		}
	}
}

// FuzzParseSignature: ParseSignature never panics; it refuses a header only
// as missing (blank) or malformed; every set it returns has a positive t and
// one to eight non-empty v1 values; and the sets written back as a header
// parse to the same sets. Seeds: testdata/fuzz/FuzzParseSignature.
func FuzzParseSignature(f *testing.F) {
	f.Add("t=1700000000,v1=" + strings.Repeat("0f", 32))
	f.Fuzz(func(t *testing.T, header string) {
		sets, err := server.ParseSignature(header)
		if err != nil {
			want := server.ReasonMalformed
			if strings.TrimSpace(header) == "" {
				want = server.ReasonMissing
			}
			if se, ok := server.IsSignatureError(err); !ok || se.Reason != want || sets != nil {
				t.Fatalf("ParseSignature(%q) = %v, %v; want reason %q", header, sets, err, want)
			}
			return
		}
		if len(sets) == 0 || len(sets) > 8 {
			t.Fatalf("ParseSignature(%q) gave %d sets", header, len(sets))
		}
		for _, set := range sets {
			if set.Timestamp <= 0 || len(set.V1) == 0 || len(set.V1) > 8 {
				t.Fatalf("ParseSignature(%q) gave set %+v", header, set)
			}
			for _, v1 := range set.V1 {
				if v1 == "" || strings.Contains(v1, ",") || strings.ContainsFunc(v1, unicode.IsSpace) {
					t.Fatalf("ParseSignature(%q) gave v1 %q", header, v1)
				}
			}
		}
		again, err := server.ParseSignature(formatSignature(sets))
		if err != nil || !reflect.DeepEqual(again, sets) {
			t.Fatalf("sets %+v written as %q parse to %+v, %v", sets, formatSignature(sets), again, err)
		}
	})
}

// formatSignature writes sets as a Persona-Signature header.
func formatSignature(sets []server.SignatureSet) string {
	fields := make([]string, len(sets))
	for i, set := range sets {
		fields[i] = "t=" + strconv.FormatInt(set.Timestamp, 10)
		for _, v1 := range set.V1 {
			fields[i] += ",v1=" + v1
		}
	}
	return strings.Join(fields, " ")
}

// FuzzVerify: for any header and body, Verify never panics, accepts exactly
// when a set within the tolerance carries the body's HMAC (hex, either
// case), and otherwise names the right reason. A header made by
// SignatureHeaderValue always verifies, also during a rotation; changing
// one byte of the body (at, xor flip) never verifies, and changing one
// byte of the header verifies only when the change is a letter's case.
// Seeds: testdata/fuzz/FuzzVerify, signed over testdata/events bodies.
func FuzzVerify(f *testing.F) {
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add("t="+ts+",v1="+server.Sign(secretA, ts, []byte("{}")), []byte("{}"), uint(0), byte(1))
	f.Add("t=1,v1=00 t=2,v1=zz,v1=", []byte(""), uint(3), byte(0x20))
	f.Add(",,,= t== v1=,t=-5", []byte("x"), uint(0), byte(0))
	f.Fuzz(func(t *testing.T, header string, body []byte, at uint, flip byte) {
		v := server.Verifier{Secrets: [][]byte{secretA}, Tolerance: fuzzTolerance}
		err := v.Verify(header, body, now)
		if want := carriesHMAC(header, body, secretA); (err == nil) != want {
			t.Fatalf("Verify(%q) = %v; carries the HMAC: %v", header, err, want)
		}
		if err != nil {
			if se, ok := server.IsSignatureError(err); !ok || se.Reason != failureReason(header) {
				t.Fatalf("Verify(%q) = %v, want reason %q", header, err, failureReason(header))
			}
		}

		signed := server.SignatureHeaderValue(body, now, secretA)
		rotated := server.SignatureHeaderValue(body, now, secretB, secretA)
		for _, secret := range [][]byte{secretA, secretB} {
			v := server.Verifier{Secrets: [][]byte{secret}, Tolerance: time.Second}
			if err := v.Verify(rotated, body, now); err != nil {
				t.Fatalf("rotation header %q does not verify under %s: %v", rotated, secret, err)
			}
		}
		if err := v.Verify(signed, body, now); err != nil {
			t.Fatalf("signed header %q does not verify: %v", signed, err)
		}

		if flip == 0 {
			return
		}
		if len(body) > 0 {
			changed := slices.Clone(body)
			changed[at%uint(len(changed))] ^= flip
			if v.Verify(signed, changed, now) == nil {
				t.Fatalf("%q verifies a changed body %q", signed, changed)
			}
		}
		changed := []byte(signed)
		changed[at%uint(len(changed))] ^= flip
		if v.Verify(string(changed), body, now) == nil && strings.ToLower(string(changed)) != signed {
			t.Fatalf("changed header %q verifies", changed)
		}
	})
}

// fuzzTolerance is the tolerance of FuzzVerify's verifier.
const fuzzTolerance = 5 * time.Minute

// fresh reports whether a set's t is within fuzzTolerance of now.
func fresh(set server.SignatureSet) bool {
	d := now.Unix() - set.Timestamp
	return -int64(fuzzTolerance/time.Second) <= d && d <= int64(fuzzTolerance/time.Second)
}

// carriesHMAC reports whether a fresh set of header carries the
// HMAC-SHA256 of "<t>.<body>" under secret, in hex of either case; the HMAC
// is computed here rather than with server.Sign.
func carriesHMAC(header string, body, secret []byte) bool {
	sets, _ := server.ParseSignature(header)
	for _, set := range sets {
		if !fresh(set) {
			continue
		}
		mac := hmac.New(sha256.New, secret)
		fmt.Fprintf(mac, "%d.%s", set.Timestamp, body)
		for _, v1 := range set.V1 {
			if got, err := hex.DecodeString(v1); err == nil && hmac.Equal(got, mac.Sum(nil)) {
				return true
			}
		}
	}
	return false
}

// failureReason is the reason Verify must give for a header that does not
// verify: ParseSignature's, else expired when no set is fresh, else
// mismatch.
func failureReason(header string) string {
	sets, err := server.ParseSignature(header)
	if se, ok := server.IsSignatureError(err); ok {
		return se.Reason
	}
	if slices.ContainsFunc(sets, fresh) {
		return server.ReasonMismatch
	}
	return server.ReasonExpired
}
