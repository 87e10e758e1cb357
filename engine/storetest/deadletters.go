package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/personad/personad/engine"
)

// testDeadLetterPagesAndReplayMark: dead letters page newest first by
// seq, one is read by seq, and the replay mark is kept once.
func testDeadLetterPagesAndReplayMark(t *testing.T, s engine.Store) {
	var seqs []int64
	for i := range 5 {
		body := fmt.Appendf(nil, "not json %d", i)
		update(t, s, func(tx engine.Tx) error {
			d := &engine.DeadLetter{ReceivedAt: t0.Add(time.Duration(i) * time.Second), Body: body, SHA256: sha256.Sum256(body), Reason: "x", Deliveries: 1}
			_, err := tx.AppendDeadLetter(d)
			seqs = append(seqs, d.Seq)
			return err
		})
	}
	var got []int64
	for before := int64(0); ; {
		page, err := s.DeadLetterPage(ctx, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			got = append(got, d.Seq)
		}
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].Seq
	}
	want := slices.Clone(seqs)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("pages by 2 gave seqs %v, want %v", got, want)
	}

	if _, err := s.GetDeadLetter(ctx, seqs[4]+100); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("GetDeadLetter of no dead letter: %v, want ErrNotFound", err)
	}
	at := t0.Add(time.Hour)
	update(t, s, func(tx engine.Tx) error { return tx.MarkDeadLetterReplayed(seqs[1], at, "evt_replayed") })
	d, err := s.GetDeadLetter(ctx, seqs[1])
	if err != nil {
		t.Fatal(err)
	}
	if !d.Replayed() || d.ReplayedEventID != "evt_replayed" || !d.ReplayedAt.Equal(at) || string(d.Body) != "not json 1" {
		t.Errorf("after the mark: %+v, want replayed as evt_replayed at %v", d, at)
	}
	for _, tt := range []struct {
		name string
		seq  int64
		want error
	}{
		{"twice", seqs[1], engine.ErrAlreadyReplayed},
		{"none", seqs[4] + 100, engine.ErrNotFound},
	} {
		err := s.Update(ctx, func(tx engine.Tx) error { return tx.MarkDeadLetterReplayed(tt.seq, at, "evt_again") })
		if !errors.Is(err, tt.want) {
			t.Errorf("mark %s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if d, err := s.GetDeadLetter(ctx, seqs[1]); err != nil || d.ReplayedEventID != "evt_replayed" {
		t.Errorf("a second mark changed the first: %+v, %v", d, err)
	}
	if d, err := s.GetDeadLetter(ctx, seqs[2]); err != nil || d.Replayed() {
		t.Errorf("another dead letter is marked: %+v, %v", d, err)
	}
}
