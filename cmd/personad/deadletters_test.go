package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/store"
)

// keepAsOlderPersona stores body as a dead letter straight into the file,
// as a personad that could not read it did at receipt; scrubbed keeps
// what a redaction or retention later left of it instead.
func keepAsOlderPersona(t *testing.T, path string, body []byte, scrubbed bool) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := &engine.DeadLetter{ReceivedAt: time.Now().Add(-time.Hour), Body: body, SHA256: sha256.Sum256(body), Reason: "older personad could not read it", Deliveries: 1}
	if scrubbed {
		d.Body = []byte("null")
	}
	if err := db.Update(context.Background(), func(tx engine.Tx) error { _, err := tx.AppendDeadLetter(d); return err }); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLettersListAndReplay: the API and personad dead-letters list
// the dead letters, newest first, a page at a time, bodies only when
// asked; personad replay refuses while serve runs, then ingests the one
// that now parses through the engine (its inquiry, event and change
// appear), marks it replayed with the event's id, skips it the second
// time, and leaves the unreadable and the scrubbed ones as they were,
// saying why.
func TestDeadLettersListAndReplay(t *testing.T) {
	d := startDaemon(t, defaultEnv())
	path := d.dbPath
	unreadable := [][]byte{[]byte(`{"data":{"type":"event","id":"evt_dl_bad"}}`), []byte(`{"hello":"world"}`)}
	for _, b := range unreadable {
		if r := d.post(b, nil); r.code != http.StatusOK || r.body["outcome"] != "dead_letter" {
			t.Fatalf("post %s: %d %s", b, r.code, r.raw)
		}
	}
	d.stop()
	readable := storetest.Body("evt_dl_ok", engine.EventApproved, "inq_dl", engine.StatusApproved, time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC))
	keepAsOlderPersona(t, path, readable, false)                                                                                       // seq 3
	keepAsOlderPersona(t, path, storetest.Body("evt_dl_s", engine.EventApproved, "inq_dl_s", engine.StatusApproved, time.Now()), true) // seq 4

	d = startDaemonAt(t, path)
	list := func(query string) (seqs []string, page []any, next any) {
		t.Helper()
		r := d.get("/v1/dead-letters" + query)
		if r.code != http.StatusOK {
			t.Fatalf("/v1/dead-letters%s: %d %s", query, r.code, r.raw)
		}
		page, _ = r.body["dead_letters"].([]any)
		for _, v := range page {
			seqs = append(seqs, strconv.FormatFloat(v.(map[string]any)["seq"].(float64), 'f', -1, 64))
		}
		return seqs, page, r.body["next_cursor"]
	}
	seqs, page, next := list("")
	if strings.Join(seqs, ",") != "4,3,2,1" || next != nil {
		t.Fatalf("dead letters %v next %v, want 4,3,2,1 and no next", seqs, next)
	}
	for _, v := range page {
		if _, ok := v.(map[string]any)["body"]; ok {
			t.Errorf("a body without include=body: %v", v)
		}
	}
	three := page[1].(map[string]any)
	if sum := sha256.Sum256(readable); three["sha256"] != hex.EncodeToString(sum[:]) || three["reason"] == "" ||
		three["deliveries"] != float64(1) || three["received_at"] == "" || three["replayed_at"] != nil || three["scrubbed"] != false {
		t.Errorf("dead letter 3: %v", three)
	}
	if page[0].(map[string]any)["scrubbed"] != true {
		t.Errorf("dead letter 4 not shown scrubbed: %v", page[0])
	}
	seqs, page, next = list("?limit=3&include=body")
	if strings.Join(seqs, ",") != "4,3,2" || next != "2" || page[1].(map[string]any)["body"] != string(readable) {
		t.Fatalf("first page of 3 with bodies: %v next %v, %v", seqs, next, page[1])
	}
	if seqs, _, next = list("?limit=3&cursor=2"); strings.Join(seqs, ",") != "1" || next != nil {
		t.Errorf("second page: %v next %v, want 1 and no next", seqs, next)
	}
	for _, q := range []string{"?include=everything", "?cursor=x", "?cursor=0", "?limit=0", "?body=1"} {
		if r := d.get("/v1/dead-letters" + q); r.code != http.StatusBadRequest || r.errCode() != "invalid_request" {
			t.Errorf("/v1/dead-letters%s: %d %s, want 400", q, r.code, r.raw)
		}
	}

	code, _, stderr := runCLI(t, "replay", "-db", path, "3")
	if code != 1 || !strings.Contains(stderr, "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(stderr, "stop personad serve") {
		t.Errorf("replay beside serve: exit %d, %q; want 1, naming serve's PID and what to do", code, stderr)
	}
	code, out, stderr := runCLI(t, "dead-letters", "-db", path, "-limit", "2")
	if code != 0 || !strings.Contains(out, "SEQ") || !strings.Contains(out, "scrubbed") || !strings.Contains(out, "-cursor 3") {
		t.Errorf("dead-letters beside serve: exit %d %s %s", code, out, stderr)
	}
	d.stop()

	code, out, stderr = runCLI(t, "replay", "-db", path, "3", "1", "4", "9")
	if code != 1 || !strings.Contains(stderr, "3 of 4 dead letters not replayed") {
		t.Errorf("replay: exit %d, stderr %q; want 1, 3 of 4 not replayed", code, stderr)
	}
	t.Logf("personad replay printed:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wants := []string{
		"dead letter 3: replayed as event evt_dl_ok (inquiry.approved): applied, inquiry inq_dl",
		"dead letter 1 still does not parse: ",
		"dead letter 4: " + engine.ErrScrubbed.Error() + ": its body was scrubbed",
		"dead letter 9: not found",
	}
	if len(lines) != len(wants) {
		t.Fatalf("replay printed %q, want %d lines", out, len(wants))
	}
	for i, want := range wants {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("replay line %d = %q, want it to start %q", i, lines[i], want)
		}
	}
	if !strings.HasSuffix(lines[1], "it stays a dead letter") {
		t.Errorf("replay of an unreadable one: %q, want it to say it stays a dead letter", lines[1])
	}
	code, out, stderr = runCLI(t, "replay", "-db", path, "3")
	if code != 0 || !strings.Contains(out, "dead letter 3: dead letter already replayed as event \"evt_dl_ok\"") || !strings.Contains(out, "skipped") {
		t.Errorf("second replay: exit %d, %q %q; want 0, skipped", code, out, stderr)
	}

	d = startDaemonAt(t, path)
	if r := d.get("/v1/inquiries/inq_dl"); r.code != http.StatusOK || r.body["status"] != "approved" || r.body["last_event_id"] != "evt_dl_ok" {
		t.Errorf("the replayed inquiry: %d %s", r.code, r.raw)
	}
	feed := d.get("/v1/changes")
	if items, _ := feed.body["changes"].([]any); len(items) != 1 || items[0].(map[string]any)["event_id"] != "evt_dl_ok" {
		t.Errorf("feed after the replay: %s, want the replayed event's change", feed.raw)
	}
	_, page, _ = list("")
	if three := page[1].(map[string]any); three["replayed_event_id"] != "evt_dl_ok" || three["replayed_at"] == nil {
		t.Errorf("dead letter 3 after its replay: %v", three)
	}
	for _, i := range []int{0, 2, 3} {
		if v := page[i].(map[string]any); v["replayed_event_id"] != nil {
			t.Errorf("dead letter %v marked replayed: %v", v["seq"], v)
		}
	}
	d.stop()
	code, out, _ = runCLI(t, "dead-letters", "-db", path)
	t.Logf("personad dead-letters printed:\n%s", out)
	if code != 0 || !strings.Contains(out, "replayed as evt_dl_ok") {
		t.Errorf("dead-letters after the replay: exit %d %s", code, out)
	}
	if code, out, stderr := runCLI(t, "verify", "-db", path); code != 0 {
		t.Errorf("verify after the replay: exit %d %s %s", code, out, stderr)
	}
}
