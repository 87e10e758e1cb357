package server_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

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

// FuzzVerify: no header and body crash the verifier, and nothing but the
// right HMAC is accepted.
func FuzzVerify(f *testing.F) {
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add("t="+ts+",v1="+server.Sign(secretA, ts, []byte("{}")), []byte("{}"))
	f.Add("t=1,v1=00 t=2,v1=zz,v1=", []byte(""))
	f.Add(",,,= t== v1=,t=-5", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		v := server.Verifier{Secrets: [][]byte{secretA}, Tolerance: 5 * time.Minute}
		if err := v.Verify(header, body, now); err == nil {
			sets, _ := server.ParseSignature(header)
			ok := false
			for _, set := range sets {
				want := server.Sign(secretA, strconv.FormatInt(set.Timestamp, 10), body)
				for _, v1 := range set.V1 {
					ok = ok || strings.ToLower(v1) == want
				}
			}
			if !ok {
				t.Fatalf("accepted %q without the right HMAC", header)
			}
		}
	})
}
