package loadgen_test

import (
	"testing"
	"time"

	"github.com/personad/personad/internal/loadgen"
)

// TestExample: every example's history ends with its event at End, in
// created-at order, for the inquiry asked for, with fresh ids per seed.
func TestExample(t *testing.T) {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range loadgen.Examples() {
		t.Run(name, func(t *testing.T) {
			a, err := loadgen.Example(loadgen.ExampleConfig{Name: name, InquiryID: "inq_x", End: end, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			last := a[len(a)-1]
			if last.Name != name || !last.CreatedAt.Equal(end) || a[0].Name != "inquiry.created" || last.Inquiry.ID != "inq_x" {
				t.Errorf("got %s at %v (first %s), want %s at %v for inq_x", last.Name, last.CreatedAt, a[0].Name, name, end)
			}
			for i := 1; i < len(a); i++ {
				if !a[i].CreatedAt.After(a[i-1].CreatedAt) {
					t.Errorf("event %d is not after event %d", i, i-1)
				}
			}
			b, _ := loadgen.Example(loadgen.ExampleConfig{Name: name, End: end, Seed: 2})
			if b[len(b)-1].ID == last.ID || b[0].Inquiry.ID == "inq_x" {
				t.Errorf("another seed gave the same ids")
			}
		})
	}
	if _, err := loadgen.Example(loadgen.ExampleConfig{Name: "inquiry.nope"}); err == nil {
		t.Error("an unknown name: no error")
	}
}

// TestExamplesSentLaterAreCreatedLater: a developer who sends two
// histories of one example for one user, one after the other, must see
// the second as the user's newest inquiry: whatever the seed, a later end
// means a later start.
func TestExamplesSentLaterAreCreatedLater(t *testing.T) {
	end := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for seed := range uint64(20) {
		first, err := loadgen.Example(loadgen.ExampleConfig{Name: "inquiry.approved", End: end, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		second, err := loadgen.Example(loadgen.ExampleConfig{Name: "inquiry.approved", End: end.Add(time.Second), Seed: seed + 100})
		if err != nil {
			t.Fatal(err)
		}
		if !second[0].CreatedAt.After(first[0].CreatedAt) {
			t.Errorf("seeds %d, %d: the history sent a second later starts at %v, the first at %v", seed, seed+100, second[0].CreatedAt, first[0].CreatedAt)
		}
	}
}
