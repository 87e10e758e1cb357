package notify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
	"github.com/personad/personad/notify"
	"github.com/personad/personad/store"
)

// testSecret is a Standard Webhooks secret: whsec_ and 32 bytes of base64.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("personad-notify-test-key-32bytes"))

// attempt is one request the receiver got.
type attempt struct {
	id     string
	code   int // what the receiver answered
	msg    notify.Message
	raw    []byte
	verify error // the Standard Webhooks library's verdict
}

// receiver is an application endpoint: it verifies every request with the
// Standard Webhooks library and answers as answer says.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	wh     *standardwebhooks.Webhook
	mu     sync.Mutex
	got    []attempt
	answer func(n int, id string) int // n counts requests from 0
}

func newReceiver(t *testing.T, answer func(n int, id string) int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, wh: wh, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		a := attempt{id: req.Header.Get(notify.HeaderID), raw: body, verify: wh.Verify(body, req.Header)}
		if err := json.Unmarshal(body, &a.msg); err != nil && a.verify == nil {
			a.verify = err
		}
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, a)
		r.mu.Unlock()
		code := http.StatusOK
		if answer != nil {
			code = answer(n, a.id)
		}
		r.mu.Lock()
		r.got[n].code = code
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) attempts() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.got...)
}

// acked returns the ids the receiver answered with a 2xx, in order.
func (r *receiver) acked() []string {
	var ids []string
	for _, a := range r.attempts() {
		if a.code >= 200 && a.code < 300 {
			ids = append(ids, a.id)
		}
	}
	return ids
}

// waitAcked waits until the receiver acknowledged n messages.
func (r *receiver) waitAcked(n int) {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(r.acked()) >= n {
			return
		}
	}
	r.t.Fatalf("receiver acknowledged %d messages within 10 s, want %d", len(r.acked()), n)
}

type feed struct {
	path string
	db   *store.DB
	eng  *engine.Engine
}

func newFeed(t *testing.T) *feed {
	t.Helper()
	path := filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &feed{path: path, db: db, eng: engine.New(db, engine.Policy{})}
}

var t0 = time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)

// ingest stores body and returns the change it made.
func (f *feed) ingest(t *testing.T, body []byte) {
	t.Helper()
	if _, err := f.eng.Ingest(context.Background(), engine.Delivery{Body: body, ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// lifecycles ingests created → pending → completed for n inquiries (three
// changes each).
func (f *feed) lifecycles(t *testing.T, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("inq_%s%d", prefix, i)
		f.ingest(t, storetest.Body("evt_"+id+"_c", engine.EventCreated, id, engine.StatusCreated, t0))
		f.ingest(t, storetest.Body("evt_"+id+"_s", engine.EventStarted, id, engine.StatusPending, t0.Add(time.Second)))
		f.ingest(t, storetest.Body("evt_"+id+"_d", engine.EventCompleted, id, engine.StatusCompleted, t0.Add(2*time.Second)))
	}
}

func (f *feed) changes(t *testing.T) []engine.Change {
	t.Helper()
	c, err := f.eng.Changes(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func key(t *testing.T) []byte {
	t.Helper()
	k, err := notify.ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// start starts a notifier for urls with fast test timings, closed at
// the end of the test.
func (f *feed) start(t *testing.T, edit func(*notify.Config), urls ...string) *notify.Notifier {
	t.Helper()
	cfg := notify.Config{Engine: f.eng, DB: f.db, URLs: urls, Key: key(t), FromStart: true,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Poll: 20 * time.Millisecond,
		ParkPoll: 20 * time.Millisecond, Timeout: time.Second}
	if edit != nil {
		edit(&cfg)
	}
	n, err := notify.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func ids(changes []engine.Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = notify.MessageID(c.Seq)
	}
	return out
}

// checkAttempts checks that every attempt verifies with the Standard
// Webhooks library, and that no change was sent before the one before it
// was acknowledged.
func checkAttempts(t *testing.T, got []attempt) {
	t.Helper()
	acked := map[string]bool{}
	last := ""
	for i, a := range got {
		if a.verify != nil {
			t.Errorf("attempt %d (%s): the Standard Webhooks library says %v", i, a.id, a.verify)
		}
		if a.id != last && last != "" && !acked[last] {
			t.Errorf("attempt %d sent %s before %s was acknowledged", i, a.id, last)
		}
		if a.code >= 200 && a.code < 300 {
			acked[a.id] = true
		}
		last = a.id
	}
}

func TestPushesEveryChangeInOrderSigned(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 5)
	r := newReceiver(t, nil)
	f.start(t, nil, r.srv.URL)
	f.lifecycles(t, "b", 5) // while it pushes
	want := f.changes(t)
	r.waitAcked(len(want))
	got := r.attempts()
	checkAttempts(t, got)
	if g, w := strings.Join(r.acked(), " "), strings.Join(ids(want), " "); g != w {
		t.Fatalf("acknowledged\n%s\nwant\n%s", g, w)
	}
	lastOf := map[string]*engine.Inquiry{}
	for i, c := range want {
		a := got[i]
		d := a.msg.Data
		if a.msg.Type != notify.EventType || a.msg.Timestamp != engine.FormatTime(c.At) {
			t.Errorf("%s: type %q timestamp %q, want %q %q", a.id, a.msg.Type, a.msg.Timestamp, notify.EventType, engine.FormatTime(c.At))
		}
		if d.Seq != c.Seq || d.InquiryID != c.InquiryID || d.EventID != c.EventID || d.Redacted != c.Redacted ||
			deref(d.FromStatus) != string(c.FromStatus) || deref(d.ToStatus) != string(c.ToStatus) || deref(d.Decision) != string(c.Decision) {
			t.Errorf("%s: data %+v, want the feed's %+v", a.id, d, c)
		}
		if d.Inquiry == nil || d.Inquiry.ID != c.InquiryID {
			t.Errorf("%s: inquiry %+v, want the projection of %s", a.id, d.Inquiry, c.InquiryID)
		}
		lastOf[c.InquiryID] = d.Inquiry
	}
	// The projection is the one when the message was sent: after the
	// change, and for the inquiry's last change, the projection now.
	for id, sent := range lastOf {
		inq, err := f.eng.Inquiry(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := jsonOf(t, sent), jsonOf(t, inq); got != want {
			t.Errorf("last message of %s: inquiry\n%s\nwant the projection\n%s", id, got, want)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestRetriesUntilAcknowledged(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 2)
	// The second change fails three times, with a 500, a 429 and a 302.
	fails := []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusFound}
	var mu sync.Mutex
	r := newReceiver(t, func(n int, id string) int {
		mu.Lock()
		defer mu.Unlock()
		if id == notify.MessageID(2) && len(fails) > 0 {
			code := fails[0]
			fails = fails[1:]
			return code
		}
		return http.StatusNoContent
	})
	n := f.start(t, nil, r.srv.URL)
	want := f.changes(t)
	r.waitAcked(len(want))
	got := r.attempts()
	checkAttempts(t, got)
	if g, w := strings.Join(r.acked(), " "), strings.Join(ids(want), " "); g != w {
		t.Errorf("acknowledged %s, want %s", g, w)
	}
	if len(got) != len(want)+3 {
		t.Errorf("%d attempts, want %d (3 retries)", len(got), len(want)+3)
	}
	waitCursor(t, f, r.srv.URL, want[len(want)-1].Seq)
	ep, _, _ := f.db.NotifyEndpoint(context.Background(), r.srv.URL)
	if !ep.FailingSince.IsZero() || ep.LastError != "" || ep.Parked() {
		t.Errorf("endpoint after recovering: %+v, want no failure recorded", ep)
	}
	if eps := n.Endpoints(); len(eps) != 1 || eps[0].Cursor != want[len(want)-1].Seq {
		t.Errorf("Endpoints() = %+v", eps)
	}
}

// waitCursor waits until the database holds cursor for url.
func waitCursor(t *testing.T, f *feed, url string, cursor int64) store.NotifyEndpoint {
	t.Helper()
	var ep store.NotifyEndpoint
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if ep, _, err = f.db.NotifyEndpoint(context.Background(), url); err != nil {
			t.Fatal(err)
		}
		if ep.Cursor == cursor {
			return ep
		}
	}
	t.Fatalf("cursor %d in the database, want %d", ep.Cursor, cursor)
	return ep
}

// waitParked waits until the database says url is parked.
func waitParked(t *testing.T, f *feed, url string) store.NotifyEndpoint {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ep, _, err := f.db.NotifyEndpoint(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		if ep.Parked() {
			return ep
		}
	}
	t.Fatalf("endpoint %s not parked within 10 s", url)
	return store.NotifyEndpoint{}
}

func TestParksAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		giveUp time.Duration
		reason string
	}{
		{"410 Gone at once", http.StatusGone, time.Hour, "410 Gone"},
		{"gives up after -notify-give-up", http.StatusServiceUnavailable, 150 * time.Millisecond, "give-up limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeed(t)
			f.lifecycles(t, "a", 2)
			var mu sync.Mutex
			failing := true
			r := newReceiver(t, func(n int, id string) int {
				mu.Lock()
				defer mu.Unlock()
				if id == notify.MessageID(3) && failing {
					return tc.code
				}
				return http.StatusOK
			})
			var logs bytes.Buffer
			var logMu sync.Mutex
			n := f.start(t, func(c *notify.Config) {
				c.GiveUp = tc.giveUp
				c.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
			}, r.srv.URL)
			ep := waitParked(t, f, r.srv.URL)
			if ep.Cursor != 2 || !strings.Contains(ep.ParkedReason, tc.reason) || ep.FailingSince.IsZero() {
				t.Errorf("parked endpoint %+v, want cursor 2 and a reason with %q", ep, tc.reason)
			}
			// The park is stored, then logged: wait for the line.
			loud := func() (bool, string) {
				logMu.Lock()
				defer logMu.Unlock()
				return strings.Contains(logs.String(), "NOTIFY ENDPOINT PARKED") && strings.Contains(logs.String(), `"level":"ERROR"`), logs.String()
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if ok, text := loud(); ok {
					break
				} else if time.Now().After(deadline) {
					t.Errorf("no loud error logged:\n%s", text)
					break
				}
			}
			before := len(r.attempts())
			time.Sleep(100 * time.Millisecond)
			if after := len(r.attempts()); after != before {
				t.Errorf("%d attempts while parked", after-before)
			}
			if eps := n.Endpoints(); !eps[0].Parked {
				t.Errorf("Endpoints() = %+v, want parked", eps)
			}

			mu.Lock()
			failing = false
			mu.Unlock()
			if _, err := store.ResumeNotifyEndpoint(context.Background(), f.path, r.srv.URL); err != nil {
				t.Fatal(err)
			}
			want := f.changes(t)
			r.waitAcked(len(want))
			checkAttempts(t, r.attempts())
			if g, w := strings.Join(r.acked(), " "), strings.Join(ids(want), " "); g != w {
				t.Errorf("acknowledged %s, want %s", g, w)
			}
			if ep := waitCursor(t, f, r.srv.URL, want[len(want)-1].Seq); ep.Parked() || !ep.FailingSince.IsZero() {
				t.Errorf("endpoint after the resume: %+v", ep)
			}
		})
	}
	t.Run("unknown URL", func(t *testing.T) {
		f := newFeed(t)
		if _, err := store.ResumeNotifyEndpoint(context.Background(), f.path, "http://nowhere.example/"); err == nil {
			t.Error("resuming an unknown endpoint succeeded")
		}
	})
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRestartContinuesFromCursor: a notifier closed cleanly saves its
// cursor, and the next one sends what came after, nothing twice.
func TestRestartContinuesFromCursor(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 3)
	r := newReceiver(t, nil)
	n := f.start(t, nil, r.srv.URL)
	r.waitAcked(9)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ep, _, _ := f.db.NotifyEndpoint(context.Background(), r.srv.URL); ep.Cursor != 9 {
		t.Fatalf("cursor %d after Close, want 9", ep.Cursor)
	}
	f.lifecycles(t, "b", 3)
	f.start(t, nil, r.srv.URL)
	want := f.changes(t)
	r.waitAcked(len(want))
	time.Sleep(50 * time.Millisecond)
	if g, w := strings.Join(r.acked(), " "), strings.Join(ids(want), " "); g != w {
		t.Errorf("acknowledged %s, want %s (each once)", g, w)
	}
}

// TestNewEndpointStartsAtHead: an endpoint first configured on a
// database with history is sent only what comes after, unless FromStart.
func TestNewEndpointStartsAtHead(t *testing.T) {
	for _, fromStart := range []bool{false, true} {
		t.Run(fmt.Sprintf("FromStart=%v", fromStart), func(t *testing.T) {
			f := newFeed(t)
			f.lifecycles(t, "old", 2)
			r := newReceiver(t, nil)
			f.start(t, func(c *notify.Config) { c.FromStart = fromStart }, r.srv.URL)
			f.lifecycles(t, "new", 1)
			all := f.changes(t)
			want := all[6:]
			if fromStart {
				want = all
			}
			r.waitAcked(len(want))
			time.Sleep(50 * time.Millisecond)
			if g, w := strings.Join(r.acked(), " "), strings.Join(ids(want), " "); g != w {
				t.Errorf("acknowledged %s, want %s", g, w)
			}
		})
	}
}

// TestTimeoutIsAFailure: an endpoint that does not answer within the
// timeout is retried, and the change is not skipped.
func TestTimeoutIsAFailure(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 1)
	var mu sync.Mutex
	hung := false
	r := newReceiver(t, func(n int, id string) int {
		mu.Lock()
		first := !hung && id == notify.MessageID(2)
		hung = hung || first
		mu.Unlock()
		if first {
			time.Sleep(400 * time.Millisecond)
		}
		return http.StatusOK
	})
	f.start(t, func(c *notify.Config) { c.Timeout = 100 * time.Millisecond }, r.srv.URL)
	r.waitAcked(4) // the hung one answers 200 too late: personad had given up on it
	got := r.attempts()
	var seqs []string
	for _, a := range got {
		seqs = append(seqs, a.id)
	}
	if g, w := strings.Join(seqs, " "), "chg_1 chg_2 chg_2 chg_3"; g != w {
		t.Errorf("attempts %s, want %s", g, w)
	}
}

// TestCloseIsBounded: Close cuts an attempt that outlives its context and
// saves the cursor of what was acknowledged.
func TestCloseIsBounded(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 1)
	release := make(chan struct{})
	r := newReceiver(t, func(n int, id string) int {
		if id == notify.MessageID(3) {
			<-release
		}
		return http.StatusOK
	})
	defer close(release)
	n := f.start(t, func(c *notify.Config) { c.Timeout = time.Minute }, r.srv.URL)
	for deadline := time.Now().Add(10 * time.Second); len(r.attempts()) < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	n.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a hung endpoint, want about 200ms", d)
	}
	if ep, _, _ := f.db.NotifyEndpoint(context.Background(), r.srv.URL); ep.Cursor != 2 {
		t.Errorf("cursor %d after Close, want 2", ep.Cursor)
	}
}

// TestRedactedCarriesNoPersonalData: Persona's own bodies carry names,
// birthdates and addresses; no message, before or after the redaction,
// carries any of them.
func TestRedactedCarriesNoPersonalData(t *testing.T) {
	f := newFeed(t)
	for _, name := range []string{"inquiry.created.json", "inquiry.completed.json", "inquiry.approved.json", "inquiry.redacted.json"} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "events", name))
		if err != nil {
			t.Fatal(err)
		}
		f.ingest(t, b)
	}
	r := newReceiver(t, nil)
	f.start(t, nil, r.srv.URL)
	want := f.changes(t)
	r.waitAcked(len(want))
	last := r.attempts()[len(want)-1]
	if !last.msg.Data.Redacted || last.msg.Data.Inquiry == nil || !last.msg.Data.Inquiry.Redacted {
		t.Errorf("last message %s, want the redaction", last.raw)
	}
	for _, a := range r.attempts() {
		for _, pii := range []string{"Jane", "Doe", "1995-09-08", "jane@example.com"} {
			if bytes.Contains(a.raw, []byte(pii)) {
				t.Errorf("%s carries %q: %s", a.id, pii, a.raw)
			}
		}
	}
}

func TestParseSecret(t *testing.T) {
	key32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for _, tc := range []struct {
		in   string
		want int // key length, 0 for an error
	}{
		{"whsec_" + key32, 32},
		{key32, 32}, // the libraries accept it without the prefix
		{" whsec_" + key32 + "\n", 32},
		{"\ufeffwhsec_" + key32, 32},
		{"whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), 0},
		{"whsec_not base64!", 0},
		{"", 0},
	} {
		key, err := notify.ParseSecret(tc.in)
		if got := len(key); got != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("ParseSecret(%q) = %d bytes, %v; want %d bytes", tc.in, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), key32) {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}

// TestSignMatchesTheLibrary checks Sign against the Standard Webhooks
// library's own signer.
func TestSignMatchesTheLibrary(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	body := []byte(`{"type":"inquiry.changed"}`)
	want, _ := wh.Sign("chg_7", at, body)
	if got := notify.Sign(key(t), "chg_7", at, body); got != want {
		t.Errorf("Sign = %s, want the library's %s", got, want)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://app.example/hooks/personad", "https://app.example/hooks/personad"},
		{"https://user:pass@app.example/h?token=s3cret", "https://app.example/h?"},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000/"},
	} {
		if got := notify.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"https://app.example/hooks", true},
		{"http://127.0.0.1:9000", true},
		{"ftp://app.example/", false},
		{"app.example/hooks", false},
		{"https:///nohost", false},
		{"https://app.example/#frag", false},
	} {
		if err := notify.CheckURL(tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestDowntimeDoesNotCountTowardsGiveUp: an endpoint that was failing
// when the daemon stopped, long before it started again, is retried with
// backoff first: the give-up clock counts time spent retrying.
func TestDowntimeDoesNotCountTowardsGiveUp(t *testing.T) {
	f := newFeed(t)
	f.lifecycles(t, "a", 1)
	var mu sync.Mutex
	failures := 0
	r := newReceiver(t, func(n int, id string) int {
		mu.Lock()
		defer mu.Unlock()
		if failures < 3 {
			failures++
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ctx := context.Background()
	if _, err := f.db.RegisterNotifyEndpoint(ctx, r.srv.URL, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Failing since four days ago, when the daemon went down.
	if err := f.db.NotifyFailing(ctx, r.srv.URL, time.Now().Add(-96*time.Hour), "answered 503"); err != nil {
		t.Fatal(err)
	}
	f.start(t, func(c *notify.Config) { c.GiveUp = 72 * time.Hour }, r.srv.URL)
	want := f.changes(t)
	r.waitAcked(len(want))
	if ep, _, _ := f.db.NotifyEndpoint(ctx, r.srv.URL); ep.Parked() {
		t.Errorf("parked at its first attempt after the restart: %+v", ep)
	}
}
