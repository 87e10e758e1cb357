package engine_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestScrubPersonaExamples runs the three scrubs over every one of
// Persona's example bodies in the three key inflections. What must go is
// worked out from the original body by allowlist, written here from the
// rules independently of the scrubber: every value the allowlist does not
// keep must be null afterwards, the values it keeps must be as they were,
// and no personal string may survive anywhere in the bytes.
func TestScrubPersonaExamples(t *testing.T) {
	for _, name := range personaExampleNames(t) {
		orig := personaExample(t, name)
		for _, infl := range inflections {
			body := inflectBody(t, orig, infl.key)
			for _, sc := range scrubs {
				t.Run(name+"/"+infl.name+"/"+sc.name, func(t *testing.T) {
					scrubbed := mustScrub(t, sc.fn, body)
					checkAllowlist(t, body, scrubbed, sc.keepRef, sc.keepTag)
					checkSameEvent(t, body, scrubbed, sc.keepRef, sc.keepTag)
				})
			}
			t.Run(name+"/"+infl.name+"/idempotent", func(t *testing.T) { checkIdempotent(t, body) })
		}
	}
}

// checkAllowlist checks scrubbed against the allowlist of body.
func checkAllowlist(t *testing.T, body, scrubbed []byte, keepRef, keepTags bool) {
	t.Helper()
	before, after := allowlist(t, body, keepRef, keepTags), allowlist(t, scrubbed, keepRef, keepTags)

	var keptBefore, keptAfter []leaf
	keptValues := map[string]bool{}
	for _, l := range before {
		if s, ok := l.value.(string); ok && l.kept {
			keptBefore = append(keptBefore, l)
			keptValues[s] = true
		}
	}
	for _, l := range after {
		switch _, ok := l.value.(string); {
		case l.kept && ok:
			keptAfter = append(keptAfter, l)
		case !l.kept && l.value != nil:
			t.Errorf("%s keeps %v", l.path, l.value)
		}
	}
	if got, want := keptAfter, keptBefore; !equalLeaves(got, want) {
		t.Errorf("kept values differ:\n got  %v\n want %v", got, want)
	}

	// A personal string could survive elsewhere than where it was, which
	// the walk above would not see: look for each in the bytes, as a JSON
	// string value (unquoted, "start" would be found in a key started-at),
	// written as it was or with encoding/json's escapes.
	for _, l := range before {
		s, ok := l.value.(string)
		if !ok || l.kept || len(s) < 4 || keptValues[s] {
			continue
		}
		enc, _ := json.Marshal(s)
		if holdsValue(scrubbed, []byte(`"`+s+`"`)) || holdsValue(scrubbed, enc) {
			t.Errorf("%q (%s) survived", s, l.path)
		}
	}
}

// holdsValue reports whether body holds the JSON string quoted other than
// as a key.
func holdsValue(body, quoted []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], quoted)
		if j < 0 {
			return false
		}
		i += j + len(quoted)
		if rest := bytes.TrimLeft(body[i:], " \t\r\n"); len(rest) == 0 || rest[0] != ':' {
			return true
		}
	}
}

func equalLeaves(a, b []leaf) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// leaf is a scalar in a body, where it is and whether the allowlist keeps
// it.
type leaf struct {
	path  string
	value any // string, json.Number, bool or nil
	kept  bool
}

// allowlist lists the scalars of body and whether each is kept: the rules
// of Scrub's doc comment, with an inquiry's reference-id and tags kept as
// keepRef and keepTags say.
func allowlist(tb testing.TB, body []byte, keepRef, keepTags bool) []leaf {
	tb.Helper()
	d, err := decodeDoc(body)
	if err != nil {
		tb.Fatalf("decoding: %v", err)
	}
	w := allowWalker{keepRef: keepRef, keepTags: keepTags}
	if d.kind == '{' {
		w.object(d, "", place{root: true})
	} else {
		w.generic(d, "")
	}
	return w.leaves
}

type allowWalker struct {
	keepRef, keepTags bool
	leaves            []leaf
}

// place is where an object sits, as far as the rules care.
type place struct {
	root          bool // the body
	envelope      bool // the root's data
	envelopeAttrs bool // the root's data.attributes
	inquiryAttrs  bool // the attributes of an object of type "inquiry"
}

func (w *allowWalker) object(d jsonDoc, path string, at place) {
	typ := ""
	for _, m := range d.members {
		if normalizeKey(m.key) == "type" {
			typ, _ = m.value.scalar.(string) // the last one counts
		}
	}
	for _, m := range d.members {
		p, k, v := path+"."+m.key, normalizeKey(m.key), m.value
		switch {
		case at.root && k == "data" && v.kind == '{':
			w.object(v, p, place{envelope: true})
		case k == "attributes" && v.kind == '{':
			w.object(v, p, place{envelopeAttrs: at.envelope, inquiryAttrs: typ == "inquiry"})
		case k == "type", k == "id", k == "status", isTimestampKey(m.key), at.envelopeAttrs && k == "name":
			w.string(v, p, true)
		case strings.HasSuffix(k, "tags"):
			w.drop(v, p, w.keepTags && at.inquiryAttrs && k == "tags" && isStrings(v))
		case k == "fields":
			w.fields(v, p)
		case k == "referenceid":
			w.drop(v, p, w.keepRef && at.inquiryAttrs && isString(v))
		default:
			w.generic(v, p)
		}
	}
}

// string keeps a string (or null) when keep, walks a container and drops
// any other value.
func (w *allowWalker) string(d jsonDoc, path string, keep bool) {
	if d.kind != 0 {
		w.generic(d, path)
		return
	}
	_, isString := d.scalar.(string)
	w.leaves = append(w.leaves, leaf{path, d.scalar, keep && (isString || d.scalar == nil)})
}

// generic walks objects and arrays and drops every scalar.
func (w *allowWalker) generic(d jsonDoc, path string) {
	switch d.kind {
	case '{':
		w.object(d, path, place{})
	case '[':
		for i, e := range d.elems {
			w.generic(e, path+"["+strconv.Itoa(i)+"]")
		}
	default:
		w.leaves = append(w.leaves, leaf{path, d.scalar, false})
	}
}

// drop lists every scalar in d as kept or not, looking at no key.
func (w *allowWalker) drop(d jsonDoc, path string, keep bool) {
	for _, m := range d.members {
		w.drop(m.value, path+"."+m.key, keep)
	}
	for i, e := range d.elems {
		w.drop(e, path+"["+strconv.Itoa(i)+"]", keep)
	}
	if d.kind == 0 {
		w.leaves = append(w.leaves, leaf{path, d.scalar, keep})
	}
}

// fields keeps the type of each entry of a fields object.
func (w *allowWalker) fields(d jsonDoc, path string) {
	if d.kind != '{' {
		w.drop(d, path, false)
		return
	}
	for _, entry := range d.members {
		p := path + "." + entry.key
		if entry.value.kind != '{' {
			w.drop(entry.value, p, false)
			continue
		}
		for _, m := range entry.value.members {
			_, isString := m.value.scalar.(string)
			w.drop(m.value, p+"."+m.key, normalizeKey(m.key) == "type" && isString)
		}
	}
}

// isTimestampKey: created-at, created_at, createdAt, and the times Parse
// reads in any inflection; not format, flat or chat.
func isTimestampKey(key string) bool {
	switch {
	case len(key) > 3 && (strings.HasSuffix(key, "-at") || strings.HasSuffix(key, "_at")),
		len(key) > 2 && strings.HasSuffix(key, "At"):
		return true
	}
	k := normalizeKey(key)
	return k == "createdat" || k == "redactedat"
}

func isStrings(d jsonDoc) bool {
	if d.kind != '[' {
		return false
	}
	for _, e := range d.elems {
		if _, ok := e.scalar.(string); !ok || e.kind != 0 {
			return false
		}
	}
	return true
}

func isString(d jsonDoc) bool {
	_, ok := d.scalar.(string)
	return ok && d.kind == 0
}
