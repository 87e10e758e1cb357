package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/server/openapitest"
)

// countingStore counts the projection reads of each inquiry.
type countingStore struct {
	*engine.MemoryStore
	mu    sync.Mutex
	reads map[string]int
}

func (s *countingStore) GetInquiry(ctx context.Context, id string) (*engine.Inquiry, error) {
	s.mu.Lock()
	s.reads[id]++
	s.mu.Unlock()
	return s.MemoryStore.GetInquiry(ctx, id)
}

func (s *countingStore) readsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[id]
}

// TestDecisionPollWakesOnlyForItsInquiry: changes to inquiry A do not
// make a decision poll parked on inquiry B read the store; B's own
// change does, once, and answers it.
func TestDecisionPollWakesOnlyForItsInquiry(t *testing.T) {
	st := &countingStore{MemoryStore: engine.NewMemoryStore(), reads: map[string]int{}}
	f := &fixture{store: st.MemoryStore, eng: engine.New(st, engine.Policy{})}
	wh, err := server.NewWebhookHandler(server.WebhookConfig{Engine: f.eng, Secrets: [][]byte{secretA}})
	if err != nil {
		t.Fatal(err)
	}
	f.webhook = httptest.NewServer(wh)
	f.api = httptest.NewServer(openapitest.Handler(t, server.NewAPIHandler(server.APIConfig{Engine: f.eng})))
	t.Cleanup(func() { f.webhook.Close(); f.api.Close() })

	f.post(t, event("evt_b1", engine.EventStarted, "inq_B", engine.StatusPending, t0), nil)
	done := make(chan map[string]any)
	go func() {
		_, v := f.get(t, "/v1/inquiries/inq_B/decision?wait=20s")
		done <- v
	}()
	for start := time.Now(); st.readsOf("inq_B") == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the poll never read its inquiry")
		}
	}
	steps := []struct {
		name   string
		status engine.Status
	}{{engine.EventCreated, engine.StatusCreated}, {engine.EventStarted, engine.StatusPending}, {engine.EventCompleted, engine.StatusCompleted}, {engine.EventApproved, engine.StatusApproved}}
	for i, s := range steps {
		if code, v := f.post(t, event(fmt.Sprintf("evt_a%d", i), s.name, "inq_A", s.status, t0.Add(time.Duration(i)*time.Minute)), nil); code != 200 {
			t.Fatalf("inq_A: %d %v", code, v)
		}
	}
	// A poll woken by those changes would read again at once.
	time.Sleep(200 * time.Millisecond)
	if got := st.readsOf("inq_B"); got != 1 {
		t.Errorf("the poll on inq_B read the store %d times while only inq_A changed, want 1", got)
	}
	f.post(t, event("evt_b2", engine.EventDeclined, "inq_B", engine.StatusDeclined, t0.Add(time.Hour)), nil)
	select {
	case v := <-done:
		if v["decision"] != "declined" {
			t.Errorf("poll answered %v, want decision declined", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not answer when its inquiry was decided")
	}
	if got := st.readsOf("inq_B"); got != 2 {
		t.Errorf("the poll read inq_B %d times, want 2 (parked, then decided)", got)
	}
}
