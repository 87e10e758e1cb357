package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

func TestState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db := openPath(t, path, store.Options{})
	if _, found, err := db.State(ctx, "backfill"); err != nil || found {
		t.Fatalf("State of a new file = found %v, %v; want nothing", found, err)
	}
	for _, v := range []string{`{"cursor":"inq_1"}`, `{"cursor":"inq_2"}`} {
		if err := db.SetState(ctx, "backfill", v); err != nil {
			t.Fatal(err)
		}
		got, found, err := db.State(ctx, "backfill")
		if err != nil || !found || got != v {
			t.Fatalf("State after SetState(%s) = %q, %v, %v", v, got, found, err)
		}
	}
	if _, found, _ := db.State(ctx, "other"); found {
		t.Error("a key never set is found")
	}
	db.Close()

	// It survives a reopen, and a read-only handle reads but cannot write.
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, found, err := ro.State(ctx, "backfill"); err != nil || !found || got != `{"cursor":"inq_2"}` {
		t.Errorf("State after reopen = %q, %v, %v", got, found, err)
	}
	if err := ro.SetState(ctx, "backfill", "x"); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("SetState on a read-only handle = %v, want ErrUnavailable", err)
	}
}
