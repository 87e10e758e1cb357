package bodycodec_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/quick"

	"github.com/personad/personad/internal/bodycodec"
	"github.com/personad/personad/internal/loadgen"
)

// personaExamples returns Persona's example bodies in compact form, as
// Persona sends them.
func personaExamples(tb testing.TB) [][]byte {
	tb.Helper()
	names, err := filepath.Glob("../../testdata/persona/*.json")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no examples: %v", err)
	}
	var bodies [][]byte
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		bodies = append(bodies, b.Bytes())
	}
	return bodies
}

// loadgenBodies returns n bodies of the stream personad bench sends.
func loadgenBodies(n int) [][]byte {
	gen := loadgen.New(loadgen.Config{Seed: 15, Events: n})
	var bodies [][]byte
	for ev := gen.Next(); ev != nil; ev = gen.Next() {
		bodies = append(bodies, ev.Body)
	}
	return bodies
}

func roundTrip(t *testing.T, body []byte) []byte {
	t.Helper()
	stored := bodycodec.Encode(nil, body)
	got, err := bodycodec.Decode(stored)
	if err != nil {
		t.Fatalf("Decode(Encode(%.40q)): %v", body, err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("Decode(Encode(%.40q)) = %.40q", body, got)
	}
	return stored
}

func TestRoundTripRealBodies(t *testing.T) {
	bodies := append(personaExamples(t), loadgenBodies(2000)...)
	var in, out int
	for _, body := range bodies {
		stored := roundTrip(t, body)
		if stored[0] != bodycodec.TagS2DictV1 {
			t.Errorf("a %d-byte Persona body was kept raw, not compressed", len(body))
		}
		in, out = in+len(body), out+len(stored)
	}
	// Not a performance figure: a dictionary that no longer matches
	// Persona's bodies would fail it.
	if out*2 > in {
		t.Errorf("real bodies encode to %d of %d bytes: less than half saved", out, in)
	}
}

func TestRoundTripAnyBytes(t *testing.T) {
	f := func(body []byte) bool {
		stored := bodycodec.Encode(nil, body)
		got, err := bodycodec.Decode(stored)
		return err == nil && bytes.Equal(got, body) && len(stored) <= len(body)+1
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Error(err)
	}
}

func TestRoundTripEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 5000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	long := bytes.Repeat([]byte(`{"a":"b"}`), bodycodec.MaxCompressedLen/9+1)
	for _, tc := range []struct {
		name    string
		body    []byte
		wantTag byte
	}{
		{"nil", nil, bodycodec.TagRaw},
		{"empty", []byte{}, bodycodec.TagRaw},
		{"one byte", []byte("{"), bodycodec.TagRaw},
		{"random", random, bodycodec.TagRaw},
		{"repetitive", bytes.Repeat([]byte("abc"), 1000), bodycodec.TagS2DictV1},
		{"longer than MaxCompressedLen", long, bodycodec.TagRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := roundTrip(t, tc.body)
			if stored[0] != tc.wantTag {
				t.Errorf("tag = %#x, want %#x", stored[0], tc.wantTag)
			}
		})
	}
}

func TestEncodeReusesDst(t *testing.T) {
	body := personaExamples(t)[0]
	dst := make([]byte, 0, 64<<10)
	stored := bodycodec.Encode(dst, body)
	if &stored[0] != &dst[:1][0] {
		t.Error("Encode allocated although dst had room")
	}
	if got, err := bodycodec.Decode(stored); err != nil || !bytes.Equal(got, body) {
		t.Errorf("Decode = %.40q, %v", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := bodycodec.Encode(nil, personaExamples(t)[0])
	huge := binary.AppendUvarint([]byte{bodycodec.TagS2DictV1}, bodycodec.MaxCompressedLen+1)
	for _, tc := range []struct {
		name   string
		stored []byte
		want   error
	}{
		{"empty", nil, bodycodec.ErrUnknownTag},
		{"unknown tag", []byte{0x02, '{', '}'}, bodycodec.ErrUnknownTag},
		{"a raw JSON body without a tag", []byte(`{"data":{}}`), bodycodec.ErrUnknownTag},
		{"truncated", valid[:len(valid)/2], bodycodec.ErrCorrupt},
		{"no length", []byte{bodycodec.TagS2DictV1}, bodycodec.ErrCorrupt},
		{"claims more than MaxCompressedLen", append(huge, 0), bodycodec.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bodycodec.Decode(tc.stored)
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode = %.20q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// FuzzDecode: whatever is stored, Decode returns a body or an error and
// never panics; what decodes encodes back to something that decodes to
// the same body.
func FuzzDecode(f *testing.F) {
	for _, body := range personaExamples(f)[:8] {
		f.Add(bodycodec.Encode(nil, body))
	}
	f.Add([]byte{})
	f.Add([]byte{bodycodec.TagRaw})
	f.Add([]byte{bodycodec.TagS2DictV1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x7b, 0x7d})
	f.Fuzz(func(t *testing.T, stored []byte) {
		body, err := bodycodec.Decode(stored)
		if err != nil {
			if !errors.Is(err, bodycodec.ErrUnknownTag) && !errors.Is(err, bodycodec.ErrCorrupt) {
				t.Fatalf("Decode error %v is neither ErrUnknownTag nor ErrCorrupt", err)
			}
			return
		}
		again, err := bodycodec.Decode(bodycodec.Encode(nil, body))
		if err != nil || !bytes.Equal(again, body) {
			t.Fatalf("re-encoded body decodes to %.40q, %v", again, err)
		}
	})
}

// BenchmarkEncode and BenchmarkDecode report, per body, the time and the
// stored size as a fraction of the body's (ratio).
func BenchmarkEncode(b *testing.B) {
	for _, set := range benchSets(b) {
		b.Run(set.name, func(b *testing.B) {
			var in, out int
			dst := make([]byte, 0, 64<<10)
			for i := 0; b.Loop(); i++ {
				body := set.bodies[i%len(set.bodies)]
				stored := bodycodec.Encode(dst, body)
				in, out = in+len(body), out+len(stored)
			}
			b.ReportMetric(float64(out)/float64(in), "ratio")
			b.ReportMetric(float64(in)/float64(b.N), "B/body")
			b.ReportMetric(float64(out)/float64(b.N), "stored-B/body")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, set := range benchSets(b) {
		b.Run(set.name, func(b *testing.B) {
			stored := make([][]byte, len(set.bodies))
			for i, body := range set.bodies {
				stored[i] = bodycodec.Encode(nil, body)
			}
			for i := 0; b.Loop(); i++ {
				if _, err := bodycodec.Decode(stored[i%len(stored)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type benchSet struct {
	name   string
	bodies [][]byte
}

func benchSets(b *testing.B) []benchSet {
	return []benchSet{{"persona", personaExamples(b)}, {"loadgen", loadgenBodies(5000)}}
}
