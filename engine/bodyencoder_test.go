package engine_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
)

// encodingStore is a MemoryStore that is a BodyEncoder and notes what
// each AppendEvent was handed.
type encodingStore struct {
	*engine.MemoryStore
	encoded  int
	appended []engine.Record
}

func (s *encodingStore) EncodeBody(body []byte) []byte {
	s.encoded++
	return append([]byte("encoded:"), body...)
}

func (s *encodingStore) Update(ctx context.Context, fn func(engine.Tx) error) error {
	return s.MemoryStore.Update(ctx, func(tx engine.Tx) error { return fn(appendNoter{tx, s}) })
}

type appendNoter struct {
	engine.Tx
	s *encodingStore
}

func (t appendNoter) AppendEvent(rec *engine.Record) error {
	t.s.appended = append(t.s.appended, *rec)
	return t.Tx.AppendEvent(rec)
}

// TestBodyEncoderEncodesOutsideTheUnit: a store that is a BodyEncoder is
// handed the body it encoded, as received, with every new event; when a
// redaction scrubbed the body inside the unit of work, it is handed none,
// so that it cannot store the encoding of the body as received.
func TestBodyEncoderEncodesOutsideTheUnit(t *testing.T) {
	s := &encodingStore{MemoryStore: engine.NewMemoryStore()}
	eng := engine.New(s, engine.Policy{})
	t0 := time.Date(2024, 3, 15, 18, 30, 0, 0, time.UTC)
	created := storetest.Body("evt_1", engine.EventCreated, "inq_1", engine.StatusCreated, t0)
	redacted := storetest.Body("evt_2", engine.EventRedacted, "inq_1", engine.StatusCreated, t0.Add(time.Hour))
	late := storetest.Body("evt_3", engine.EventStarted, "inq_1", engine.StatusPending, t0.Add(time.Minute))
	for _, b := range [][]byte{created, redacted, late} {
		if _, err := eng.Ingest(context.Background(), engine.Delivery{Body: b, ReceivedAt: t0.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if s.encoded != 3 {
		t.Errorf("EncodeBody called %d times, want once per delivery (3)", s.encoded)
	}
	if len(s.appended) != 3 {
		t.Fatalf("%d events appended, want 3", len(s.appended))
	}
	if want := append([]byte("encoded:"), created...); !bytes.Equal(s.appended[0].EncodedBody, want) {
		t.Errorf("the first event: EncodedBody %.40q, want the encoding of its body", s.appended[0].EncodedBody)
	}
	// The redaction and the event after it are scrubbed as they are stored.
	for i, sent := range [][]byte{redacted, late} {
		switch got := s.appended[i+1]; {
		case bytes.Equal(got.Body, sent):
			t.Fatalf("event %s was not scrubbed: this test tests nothing", got.EventID)
		case got.EncodedBody != nil:
			t.Errorf("event %s, scrubbed in the unit: EncodedBody %.40q, want none", got.EventID, got.EncodedBody)
		}
	}
}
