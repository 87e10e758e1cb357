package store_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file builds the scenarios of TestPrivacyForgetsEveryFamily: Persona's own example
// bodies (testdata/persona) rewritten to describe one person, and the list
// of that person's values, computed from the bodies with rules of its own
// (not with engine.Scrub), that must not be found on disk once the person
// is forgotten.

// The one inquiry and account of every scenario.
const (
	privacyInquiry = "inq_Pr1vacyScenar1oInqu1ry0"
	privacyAccount = "act_Pr1vacyScenar1oAcc0unt0"
	// privacyReference is the inquiry's reference-id.
	privacyReference = "customer-4711-privacy-scenario"
)

// jsonNode is a decoded JSON value that keeps the order of an object's
// members and the bytes of a scalar exactly as the body had them.
type jsonNode struct {
	kind  byte   // '{', '[', 's' (string) or 'v' (number, true, false, null)
	raw   []byte // a scalar's bytes: a string's with its quotes and escapes
	str   string // a string's decoded value
	keys  []string
	elems []*jsonNode // an object's member values (keys[i] names elems[i]) or an array's elements
}

// parseJSON decodes body into a jsonNode.
func parseJSON(body []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	n, err := decodeNode(dec, body)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the top-level value: %v", err)
	}
	return n, nil
}

func decodeNode(dec *json.Decoder, body []byte) (*jsonNode, error) {
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		n := &jsonNode{kind: byte(tok.(json.Delim))}
		for dec.More() {
			if n.kind == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := decodeNode(dec, body)
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, v)
		}
		_, err := dec.Token() // the closing delimiter
		return n, err
	}
	// The decoder's offset before the token may stand before the ':' or
	// ',' that precedes it.
	raw := bytes.TrimLeft(body[start:dec.InputOffset()], " \t\r\n:,")
	n := &jsonNode{kind: 'v', raw: slices.Clone(raw)}
	if s, ok := tok.(string); ok {
		n.kind, n.str = 's', s
	}
	return n, nil
}

// stringNode returns a JSON string.
func stringNode(s string) *jsonNode {
	raw, _ := json.Marshal(s)
	return &jsonNode{kind: 's', raw: raw, str: s}
}

// objectNode returns an object of the members k1, v1, k2, v2...
func objectNode(members ...any) *jsonNode {
	n := &jsonNode{kind: '{'}
	for i := 0; i < len(members); i += 2 {
		n.set(members[i].(string), members[i+1].(*jsonNode))
	}
	return n
}

// refNode returns a relationship to one object, {"data": {"type", "id"}}.
func refNode(typ, id string) *jsonNode {
	return objectNode("data", objectNode("type", stringNode(typ), "id", stringNode(id)))
}

// get returns the value at the path of member keys, or nil.
func (n *jsonNode) get(path ...string) *jsonNode {
	for _, k := range path {
		if n == nil || n.kind != '{' {
			return nil
		}
		i := slices.Index(n.keys, k)
		if i < 0 {
			return nil
		}
		n = n.elems[i]
	}
	return n
}

// set replaces the member k or appends it.
func (n *jsonNode) set(k string, v *jsonNode) {
	if i := slices.Index(n.keys, k); i >= 0 {
		n.elems[i] = v
		return
	}
	n.keys, n.elems = append(n.keys, k), append(n.elems, v)
}

// del removes the member k if there is one.
func (n *jsonNode) del(k string) {
	if i := slices.Index(n.keys, k); i >= 0 {
		n.keys, n.elems = slices.Delete(n.keys, i, i+1), slices.Delete(n.elems, i, i+1)
	}
}

// text returns a string node's value, "" for anything else.
func (n *jsonNode) text() string {
	if n == nil || n.kind != 's' {
		return ""
	}
	return n.str
}

func (n *jsonNode) clone() *jsonNode {
	c := *n
	c.keys = slices.Clone(n.keys)
	c.elems = make([]*jsonNode, len(n.elems))
	for i, e := range n.elems {
		c.elems[i] = e.clone()
	}
	return &c
}

// render writes n compactly with every key inflected by inflect, except
// the keys inside a fields object, which Persona never inflects. Scalars
// keep their bytes.
func (n *jsonNode) render(inflect func(string) string) []byte {
	var buf bytes.Buffer
	n.write(&buf, inflect)
	return buf.Bytes()
}

func (n *jsonNode) write(buf *bytes.Buffer, inflect func(string) string) {
	switch n.kind {
	case '{', '[':
		buf.WriteByte(n.kind)
		for i, e := range n.elems {
			if i > 0 {
				buf.WriteByte(',')
			}
			inner := inflect
			if n.kind == '{' {
				key, _ := json.Marshal(inflect(n.keys[i]))
				buf.Write(key)
				buf.WriteByte(':')
				if n.keys[i] == "fields" {
					inner = kebab
				}
			}
			e.write(buf, inner)
		}
		buf.WriteByte(n.kind + 2) // '}' is '{'+2, ']' is '['+2
	default:
		buf.Write(n.raw)
	}
}

// The key inflections Persona offers, from its kebab-case examples.
func kebab(k string) string { return k }
func snake(k string) string { return strings.ReplaceAll(k, "-", "_") }
func camel(k string) string {
	words := strings.Split(k, "-")
	for i, w := range words[1:] {
		if r, size := utf8.DecodeRuneInString(w); size > 0 {
			words[i+1] = string(unicode.ToUpper(r)) + w[size:]
		}
	}
	return strings.Join(words, "")
}

// personaFile is one example body of testdata/persona with its ids
// rewritten to the scenario's inquiry and account.
type personaFile struct {
	name string
	root *jsonNode
}

var (
	inquiryIDs = regexp.MustCompile(`\binq_[A-Za-z0-9]+`)
	accountIDs = regexp.MustCompile(`\bact_[A-Za-z0-9]+`)
)

// loadPersonaFiles reads every example body, with every inquiry id
// replaced by privacyInquiry and every account id by privacyAccount.
func loadPersonaFiles(tb testing.TB) []personaFile {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join("..", "testdata", "persona", "*.json"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no bodies in testdata/persona (%v)", err)
	}
	files := make([]personaFile, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		b = inquiryIDs.ReplaceAll(b, []byte(privacyInquiry))
		b = accountIDs.ReplaceAll(b, []byte(privacyAccount))
		root, err := parseJSON(b)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		files = append(files, personaFile{name: filepath.Base(name), root: root})
	}
	return files
}

// payloadObject returns payload.data of an event body.
func payloadObject(root *jsonNode) *jsonNode {
	return root.get("data", "attributes", "payload", "data")
}

// partRelationship names the relationship of an inquiry that lists
// objects of a family as its own, or "" when the family is not one.
func partRelationship(objectType string) string {
	family, _, _ := strings.Cut(objectType, "/")
	switch family {
	case "verification":
		return "verifications"
	case "report":
		return "reports"
	case "inquiry-session":
		return "sessions"
	case "document":
		return "documents"
	case "selfie":
		return "selfies"
	}
	return ""
}

// ownerRefs returns the ids an object's own relationships say it belongs
// to, by the rule engine.Event.Owners documents: inquiry, inquiries, account, accounts,
// transaction, and the inquiries and accounts among related-objects.
func ownerRefs(obj *jsonNode) []string {
	var ids []string
	rel := obj.get("relationships")
	for _, k := range []string{"inquiry", "inquiries", "account", "accounts", "transaction", "related-objects"} {
		data := rel.get(k, "data")
		if data == nil {
			continue
		}
		refs := []*jsonNode{data}
		if data.kind == '[' {
			refs = data.elems
		}
		for _, r := range refs {
			typ := r.get("type").text()
			if k == "related-objects" && typ != "inquiry" && typ != "account" {
				continue
			}
			if id := r.get("id").text(); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// personalValue is a string of an original body that must not be on disk
// once its object is forgotten.
type personalValue struct {
	text string // decoded
	raw  string // as the body has it, escapes included, without the quotes
	file string // the first body it was found in
}

// valueClassifier walks bodies and sorts their string leaves into those a
// redaction keeps and the others, by the kept paths of the issue:
//   - the envelope's data.type, data.id, data.attributes.name and
//     data.attributes.created-at;
//   - in every object anywhere, the members type, id and status, and every
//     timestamp (a key ending in -at, _at or At), which covers the ids in
//     relationships;
//   - in a fields object, only each entry's type;
//   - an inquiry object's reference-id, when keepReference is set (a
//     direct inquiry redaction).
//
// Everything else (tags, every value in fields, every other string) is the
// person's.
type valueClassifier struct {
	keepReference bool
	visit         func(leaf *jsonNode, kept bool)
}

func (c *valueClassifier) body(root *jsonNode) {
	if root.kind != '{' {
		c.value(root, false)
		return
	}
	for i, k := range root.keys {
		if v := root.elems[i]; k == "data" && v.kind == '{' {
			c.object(v, true)
		} else {
			c.member(k, v)
		}
	}
}

// object walks an object's members; envelope says it is the root's data.
func (c *valueClassifier) object(o *jsonNode, envelope bool) {
	typ := o.get("type").text()
	for i, k := range o.keys {
		v := o.elems[i]
		if k != "attributes" || v.kind != '{' {
			c.member(k, v)
			continue
		}
		for j, ak := range v.keys {
			av := v.elems[j]
			switch {
			case envelope && ak == "name":
				c.value(av, true)
			case ak == "reference-id" && typ == "inquiry" && c.keepReference:
				c.value(av, true)
			default:
				c.member(ak, av)
			}
		}
	}
}

func (c *valueClassifier) member(k string, v *jsonNode) {
	switch {
	case k == "fields" && v.kind != '{':
		c.opaque(v)
	case k == "fields":
		for _, entry := range v.elems {
			if entry.kind != '{' {
				c.opaque(entry)
				continue
			}
			for j, ek := range entry.keys {
				if ek == "type" && entry.elems[j].kind == 's' {
					c.visit(entry.elems[j], true)
				} else {
					c.opaque(entry.elems[j])
				}
			}
		}
	case k == "type", k == "id", k == "status", isTimestampKey(k):
		c.value(v, true)
	default:
		c.value(v, false)
	}
}

// value visits a string with kept; an object or array is walked by the
// generic rules, whatever its key: a kept member that is not a string
// keeps nothing.
func (c *valueClassifier) value(v *jsonNode, kept bool) {
	switch v.kind {
	case 's':
		c.visit(v, kept)
	case '{':
		c.object(v, false)
	case '[':
		for _, e := range v.elems {
			c.value(e, false)
		}
	}
}

// opaque visits every string under v as the person's.
func (c *valueClassifier) opaque(v *jsonNode) {
	if v.kind == 's' {
		c.visit(v, false)
	}
	for _, e := range v.elems {
		c.opaque(e)
	}
}

// isTimestampKey reports whether a kebab, snake or camel key names a time.
func isTimestampKey(k string) bool {
	return len(k) > 3 && (strings.HasSuffix(k, "-at") || strings.HasSuffix(k, "_at")) ||
		len(k) > 2 && strings.HasSuffix(k, "At")
}

// personalValues returns the strings of forgotten, at least 4 bytes long,
// that are not on a kept path and equal neither a string kept anywhere in
// all nor any string of the bodies that stay (stay are not forgotten: an
// unredacted account's bodies keep the person's data).
func personalValues(forgotten []personaFile, all, stay []*jsonNode, keepReference bool) []personalValue {
	notPersonal := map[string]bool{}
	for _, v := range keptValues(all, keepReference) {
		notPersonal[v] = true
	}
	for _, root := range stay {
		(&valueClassifier{visit: func(leaf *jsonNode, _ bool) { notPersonal[leaf.str] = true }}).body(root)
	}
	var values []personalValue
	seen := map[string]bool{}
	for _, f := range forgotten {
		(&valueClassifier{keepReference: keepReference, visit: func(leaf *jsonNode, kept bool) {
			raw := string(leaf.raw[1 : len(leaf.raw)-1])
			if kept || len(leaf.str) < 4 || notPersonal[leaf.str] || seen[raw] {
				return
			}
			seen[raw] = true
			values = append(values, personalValue{text: leaf.str, raw: raw, file: f.name})
		}}).body(f.root)
	}
	return values
}

// keptValues returns the strings of all on kept paths.
func keptValues(all []*jsonNode, keepReference bool) []string {
	var out []string
	c := &valueClassifier{keepReference: keepReference, visit: func(leaf *jsonNode, kept bool) {
		if kept {
			out = append(out, leaf.str)
		}
	}}
	for _, root := range all {
		c.body(root)
	}
	return out
}

// needle is a byte string a scan looks for, and the value it stands for.
type needle struct {
	bytes  []byte
	quoted bool // bytes are a JSON string, quotes included, that must not be followed by ':'
	value  *personalValue
}

// needles returns what to look for on disk for each value: its bytes as
// the body had them and, when they differ, its decoded bytes. A form that
// occurs inside background (keys, kept values, the schema: what stays on
// disk legitimately) is looked for as a whole JSON string in value
// position only, so that the value "birthdate" is not found in the key
// "birthdate" nor "government-id" in the type "verification/government-id".
func needles(values []personalValue, background string) []needle {
	var out []needle
	for i := range values {
		v := &values[i]
		forms := []string{v.raw}
		if v.text != v.raw {
			forms = append(forms, v.text)
		}
		for _, f := range forms {
			if strings.Contains(background, f) {
				out = append(out, needle{bytes: []byte(`"` + f + `"`), quoted: true, value: v})
			} else {
				out = append(out, needle{bytes: []byte(f), value: v})
			}
		}
	}
	return out
}

// at reports whether n occurs in b at i.
func (n needle) at(b []byte, i int) bool {
	return bytes.HasPrefix(b[i:], n.bytes) && (!n.quoted || !followedByColon(b[i+len(n.bytes):]))
}

func followedByColon(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == ':'
}

// needleSet finds many needles in one pass over the bytes, by their
// first four bytes (every needle has at least four): a database is
// megabytes, and there are hundreds of values to look for.
type needleSet struct {
	needles []needle
	present []uint64 // bit h(k): some needle may start with the four bytes k
	byStart map[uint32][]int
}

const needleHashBits = 20

func needleHash(k uint32) uint32 { return (k * 2654435761) >> (32 - needleHashBits) }

func newNeedleSet(needles []needle) *needleSet {
	s := &needleSet{needles: needles, present: make([]uint64, 1<<needleHashBits/64), byStart: map[uint32][]int{}}
	for i, n := range needles {
		k := binary.LittleEndian.Uint32(n.bytes)
		h := needleHash(k)
		s.present[h/64] |= 1 << (h % 64)
		s.byStart[k] = append(s.byStart[k], i)
	}
	return s
}

// find returns, for each value found in b, the needle that found it
// first and where.
func (s *needleSet) find(b []byte) map[*personalValue]needleAt {
	found := map[*personalValue]needleAt{}
	for i := 0; i+4 <= len(b); i++ {
		k := binary.LittleEndian.Uint32(b[i:])
		if h := needleHash(k); s.present[h/64]&(1<<(h%64)) == 0 {
			continue
		}
		for _, j := range s.byStart[k] {
			n := s.needles[j]
			if _, ok := found[n.value]; !ok && n.at(b, i) {
				found[n.value] = needleAt{n, i}
			}
		}
	}
	return found
}

// needleAt is where a needle was found.
type needleAt struct {
	needle
	offset int
}

// keysOf adds to set every key of n, inflected by each of inflect.
func keysOf(set map[string]bool, n *jsonNode, inflect ...func(string) string) {
	for i, e := range n.elems {
		if n.kind == '{' {
			for _, f := range inflect {
				set[f(n.keys[i])] = true
			}
		}
		keysOf(set, e, inflect...)
	}
}

// diskFiles are the files of a database at path whose bytes are scanned.
func diskFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm"}
}

// readDiskFile reads a file, a missing one as empty.
func readDiskFile(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		tb.Fatal(err)
	}
	return b
}

// privacyCase is one variant of the scenario.
type privacyCase struct {
	inflection string // kebab, snake or camel
	inflect    func(string) string
	// account: the redaction is account.redacted, which forgets the
	// inquiry and everything of it, reference-id included; otherwise it is
	// inquiry.redacted, which keeps the inquiry's reference-id.
	account bool
	// relationships: false strips payload.data.relationships from the
	// verification, report, inquiry-session, document and selfie bodies,
	// so that only the inquiry's lists say they belong to it.
	relationships bool
}

func (c privacyCase) String() string {
	redaction, rel := "inquiry.redacted", "with relationships"
	if c.account {
		redaction = "account.redacted"
	}
	if !c.relationships {
		rel = "without relationships"
	}
	return c.inflection + "/" + redaction + "/" + rel
}

// privacyDelivery is one request of a scenario.
type privacyDelivery struct {
	file      string // where the body comes from, for messages
	body      []byte
	eventID   string // data.id; "" for a dead letter
	object    string // payload.data.id
	attempts  int    // Persona-Webhook-Attempts-Made
	dead      bool   // not a Persona event: kept as a dead letter
	notJSON   bool   // a dead letter that is not JSON: stored as null once forgotten
	redaction bool   // the variant's redaction
	conflict  bool   // another body under the id of one of events: kept as a conflict
}

// privacyScenario is what one variant delivers and what must be gone from
// disk afterwards. The deliveries are shuffled per seed by order.
type privacyScenario struct {
	c           privacyCase
	events      []privacyDelivery // one per event, the redaction among them
	deadLetters []privacyDelivery // each delivered once before the redaction and once after
	conflicts   []privacyDelivery // each delivered twice after the event whose id it takes
	forgotten   map[string]bool   // the objects the redactions forget, by personad's linking rules
	// unlisted is inquiry.redacted with Persona's own lists of the
	// inquiry's parts, which name none of the scenario's: order delivers
	// it on even seeds, so that the parts' links are learned after the
	// redaction (nil for account.redacted).
	unlisted []byte
	// personal are the values that must not be on disk: those of the
	// forgotten bodies that no body that stays holds too. needles finds
	// them.
	personal []personalValue
	needles  *needleSet
	// inBodies finds every value of the forgotten bodies, even one a body
	// that stays holds too, in the stored bodies of forgotten objects.
	inBodies *needleSet
}

// newPrivacyScenario builds a variant from the example bodies: every file
// but the other variant's redaction, with ids rewritten so that everything
// belongs to privacyInquiry (or its account privacyAccount), a fresh event
// id for each, and the inquiry listing every verification, report,
// session, document and selfie of the scenario as its own.
func newPrivacyScenario(tb testing.TB, files []personaFile, c privacyCase) *privacyScenario {
	tb.Helper()
	other := "account-redacted.json"
	if c.account {
		other = "inquiry-redacted.json"
	}
	var bodies []personaFile
	for _, f := range files {
		if f.name != other {
			bodies = append(bodies, personaFile{name: f.name, root: f.root.clone()})
		}
	}

	// The inquiry's own lists, in file order, each id once.
	parts := map[string][]*jsonNode{}
	listed := map[string]bool{}
	for _, f := range bodies {
		obj := payloadObject(f.root)
		typ, id := obj.get("type").text(), obj.get("id").text()
		if rel := partRelationship(typ); rel != "" && !listed[id] {
			listed[id] = true
			parts[rel] = append(parts[rel], objectNode("type", stringNode(typ), "id", stringNode(id)))
		}
	}
	var unlisted *jsonNode
	for i, f := range bodies {
		f.root.get("data").set("id", stringNode("evt_"+scrambled(fmt.Sprint(c, "/", f.name, "/", i))))
		obj := payloadObject(f.root)
		typ, id := obj.get("type").text(), obj.get("id").text()
		switch {
		case typ == "inquiry":
			// Persona's examples carry no reference-id: give the inquiry
			// one, the customer's own id for the person, which a direct
			// redaction keeps and an account redaction forgets.
			if attrs := obj.get("attributes"); attrs.get("reference-id").text() == "" {
				attrs.set("reference-id", stringNode(privacyReference))
			}
			rel := relationshipsOf(obj)
			rel.set("account", refNode("account", privacyAccount))
			if f.name == redactionFile(c) {
				unlisted = f.root.clone()
			}
			for _, name := range []string{"verifications", "reports", "sessions", "documents", "selfies"} {
				rel.set(name, objectNode("data", &jsonNode{kind: '[', elems: parts[name]}))
			}
		case partRelationship(typ) != "" && !c.relationships:
			obj.del("relationships")
		case id != privacyAccount && !slices.ContainsFunc(ownerRefs(obj), func(o string) bool {
			return o == privacyInquiry || o == privacyAccount
		}):
			// workflow runs, importer pipeline runs, transaction types and
			// transactions name no inquiry nor account: link them.
			relationshipsOf(obj).set("inquiry", refNode("inquiry", privacyInquiry))
		}
	}

	s := &privacyScenario{c: c, forgotten: forgottenObjects(bodies)}
	var all, stay []*jsonNode
	var gone []personaFile
	for _, f := range bodies {
		all = append(all, f.root)
		obj := payloadObject(f.root)
		if s.forgotten[obj.get("id").text()] {
			gone = append(gone, f)
		} else {
			stay = append(stay, f.root)
		}
		if f.root.get("data", "attributes", "name").text() == "" {
			tb.Fatalf("%s: no event name", f.name)
		}
		s.events = append(s.events, privacyDelivery{
			file: f.name, body: f.root.render(c.inflect), eventID: f.root.get("data", "id").text(),
			object: obj.get("id").text(), attempts: 1, redaction: f.name == redactionFile(c),
		})
	}
	if unlisted != nil {
		s.unlisted = unlisted.render(c.inflect)
	}
	s.deadLetters = newDeadLetters(tb, bodies, c)
	s.conflicts = newConflicts(tb, bodies, s.events, c)
	s.personal = personalValues(gone, all, stay, !c.account)
	s.needles = newNeedleSet(needles(s.personal, privacyBackground(tb, all, stay, !c.account)))
	s.inBodies = newNeedleSet(needles(personalValues(gone, all, nil, !c.account), privacyBackground(tb, all, nil, !c.account)))
	return s
}

// redactionFile is the body of a variant's redaction.
func redactionFile(c privacyCase) string {
	if c.account {
		return "account-redacted.json"
	}
	return "inquiry-redacted.json"
}

// relationshipsOf returns obj's relationships, adding an empty object if
// it has none.
func relationshipsOf(obj *jsonNode) *jsonNode {
	rel := obj.get("relationships")
	if rel == nil || rel.kind != '{' {
		rel = &jsonNode{kind: '{'}
		obj.set("relationships", rel)
	}
	return rel
}

// forgottenObjects returns, by the linking rules personad documents, the objects that
// the scenario's redactions forget: each redacted object (the variant's
// redaction, and any body whose name ends in .redacted or whose
// redacted-at is set) and, transitively, everything that belongs to it.
func forgottenObjects(bodies []personaFile) map[string]bool {
	members := map[string][]string{} // owner → objects that belong to it
	var redacted []string
	for _, f := range bodies {
		obj := payloadObject(f.root)
		id := obj.get("id").text()
		for _, o := range ownerRefs(obj) {
			members[o] = append(members[o], id)
		}
		if obj.get("type").text() == "inquiry" {
			for _, rel := range []string{"verifications", "reports", "sessions", "documents", "selfies"} {
				for _, p := range obj.get("relationships", rel, "data").elems {
					members[id] = append(members[id], p.get("id").text())
				}
			}
		}
		name := f.root.get("data", "attributes", "name").text()
		if strings.HasSuffix(name, ".redacted") || obj.get("attributes", "redacted-at").text() != "" {
			redacted = append(redacted, id)
		}
	}
	forgotten := map[string]bool{}
	var forget func(id string)
	forget = func(id string) {
		if forgotten[id] {
			return
		}
		forgotten[id] = true
		for _, m := range members[id] {
			forget(m)
		}
	}
	for _, id := range redacted {
		forget(id)
	}
	return forgotten
}

// newDeadLetters returns the authentic bodies of the scenario that are not
// Persona events but name the inquiry or a verification and hold the
// person's data: a verification body cut short (not JSON), and another
// without its data.id (JSON, but not an event).
func newDeadLetters(tb testing.TB, bodies []personaFile, c privacyCase) []privacyDelivery {
	tb.Helper()
	find := func(name string) *jsonNode {
		for _, f := range bodies {
			if f.name == name {
				return f.root
			}
		}
		tb.Fatalf("no %s", name)
		return nil
	}
	cut := find("verification-failed.json").render(c.inflect)
	noID := find("verification-passed.json").clone()
	noID.get("data").del("id")
	return []privacyDelivery{
		{file: "verification-failed.json, cut short", body: cut[:len(cut)*2/3], attempts: 1, dead: true, notJSON: true},
		{file: "verification-passed.json without data.id", body: noID.render(c.inflect), attempts: 1, dead: true},
	}
}

// newConflicts returns, for the inquiry's inquiry.completed and a
// verification, another body under the same event id: the same person's
// data, created a millisecond later, which personad keeps beside the
// event as a conflict and must forget as it forgets the event's body.
func newConflicts(tb testing.TB, bodies []personaFile, events []privacyDelivery, c privacyCase) []privacyDelivery {
	tb.Helper()
	var out []privacyDelivery
	for _, name := range []string{"inquiry-completed.json", "verification-passed.json"} {
		i := slices.IndexFunc(bodies, func(f personaFile) bool { return f.name == name })
		if i < 0 {
			tb.Fatalf("no %s", name)
		}
		root := bodies[i].root.clone()
		attrs := root.get("data", "attributes")
		at, err := time.Parse(time.RFC3339Nano, attrs.get("created-at").text())
		if err != nil {
			tb.Fatalf("%s: created-at: %v", name, err)
		}
		attrs.set("created-at", stringNode(at.Add(time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z")))
		d := events[i]
		d.file, d.body, d.conflict = name+", another body", root.render(c.inflect), true
		out = append(out, d)
	}
	return out
}

// privacyBackground is what stays on disk legitimately, against which a
// value is looked for as a whole JSON string rather than as bare bytes:
// every key of the bodies in every inflection, every kept value, every
// string of the bodies that stay, and the schema.
func privacyBackground(tb testing.TB, all, stay []*jsonNode, keepReference bool) string {
	tb.Helper()
	set := map[string]bool{}
	for _, root := range all {
		keysOf(set, root, kebab, snake, camel)
	}
	for _, v := range keptValues(all, keepReference) {
		set[v] = true
	}
	for _, root := range stay {
		(&valueClassifier{visit: func(leaf *jsonNode, _ bool) { set[leaf.str] = true }}).body(root)
	}
	schema, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, file := range schema {
		set[string(readDiskFile(tb, file))] = true
	}
	return strings.Join(slices.Sorted(maps.Keys(set)), "\x00")
}

// order returns the deliveries of one run: every event in a shuffled
// order, the redaction first of them (seed 0), last (seed 1) or anywhere
// (listing the inquiry's parts on odd seeds only),
// each dead letter once before the redaction and once after it, and a few
// redeliveries, each after the delivery it repeats.
func (s *privacyScenario) order(seed uint64) []privacyDelivery {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1ab1e))
	var redaction privacyDelivery
	var out []privacyDelivery
	for _, d := range s.events {
		if d.redaction {
			redaction = d
			if seed%2 == 0 && s.unlisted != nil {
				redaction.body = s.unlisted
			}
		} else {
			out = append(out, d)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	at := rng.IntN(len(out) + 1)
	switch seed {
	case 0:
		at = 0
	case 1:
		at = len(out)
	}
	out = slices.Insert(out, at, redaction)
	for _, d := range s.deadLetters {
		before := rng.IntN(at + 1)
		out = slices.Insert(out, before, d)
		at++
		out = slices.Insert(out, at+1+rng.IntN(len(out)-at), d)
	}
	for _, c := range s.conflicts {
		i := slices.IndexFunc(out, func(d privacyDelivery) bool { return d.eventID == c.eventID })
		for range 2 {
			i = i + 1 + rng.IntN(len(out)-i)
			out = slices.Insert(out, i, c)
		}
	}
	for range 4 {
		i := rng.IntN(len(out))
		if out[i].dead || out[i].conflict {
			continue
		}
		again := out[i]
		again.attempts = 2
		out = slices.Insert(out, i+1+rng.IntN(len(out)-i), again)
	}
	return out
}
