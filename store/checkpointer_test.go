package store_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/store"
)

// walIndex reads from the -shm file of the database at path how many
// frames the WAL holds (mxFrame) and how many of them a checkpoint copied
// into the database file (nBackfill): the WAL-index header is at offset
// 0 (mxFrame at 16), the checkpoint info after its two copies, at 96, in
// native (here little-endian) byte order.
func walIndex(tb testing.TB, path string) (mxFrame, nBackfill uint32) {
	tb.Helper()
	shm, err := os.ReadFile(path + "-shm")
	if err != nil {
		tb.Fatal(err)
	}
	if len(shm) < 100 {
		tb.Fatalf("-shm holds %d bytes", len(shm))
	}
	return binary.LittleEndian.Uint32(shm[16:]), binary.LittleEndian.Uint32(shm[96:])
}

// TestCheckpointsRunBesideTheWriter: with the background checkpointer, the
// WAL is copied into the database file soon after commits that the
// writer's own autocheckpoint would not have checkpointed; without it,
// they stay in the WAL only. Either way every event reads back.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			defer store.SetBackgroundCheckpoints(on)()
			path := filepath.Join(t.TempDir(), "personad.db")
			db, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			g := newGenerator(t)
			g.random = true
			var bodies [][]byte
			for n := range 20 {
				for step := range 2 {
					bodies = append(bodies, g.body(n, step))
				}
			}
			ingestAll(t, engine.New(db, engine.Policy{}), bodies, 4)
			mx, backfilled := walIndex(t, path)
			if mx == 0 || mx >= 1000 {
				t.Fatalf("the WAL holds %d frames; the test needs some, fewer than SQLite's autocheckpoint", mx)
			}
			deadline := time.Now().Add(5 * time.Second)
			for on && backfilled < mx && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				mx, backfilled = walIndex(t, path)
			}
			if !on {
				time.Sleep(200 * time.Millisecond)
				mx, backfilled = walIndex(t, path)
			}
			switch {
			case on && backfilled != mx:
				t.Errorf("%d of %d WAL frames copied into the file 5 s after the last commit", backfilled, mx)
			case !on && backfilled != 0:
				t.Errorf("%d of %d WAL frames copied with no checkpointer", backfilled, mx)
			}
			if on {
				if runs, errs := store.CheckpointerRuns(db); runs == 0 || errs != 0 {
					t.Errorf("%d background checkpoints, %d failed", runs, errs)
				}
			}
			for n := range 20 {
				inq, err := db.GetInquiry(ctx, g.inquiryID(n))
				if err != nil || inq.Status != engine.StatusPending {
					t.Fatalf("inquiry %d: %v, %+v", n, err, inq)
				}
			}
		})
	}
}

// TestCheckpointerStopsAfterAFailedSync: once a WAL sync failed, the WAL
// may not hold what SQLite thinks it does, and nothing of it may reach
// the database file: the checkpointer runs no checkpoint more.
func TestCheckpointerStopsAfterAFailedSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "personad.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng := engine.New(db, engine.Policy{})
	g := newGenerator(t)
	ingestAll(t, eng, [][]byte{g.body(1, 0)}, 1)
	h := holdSync(t, db)
	h.err = errors.New("injected EIO")
	h.armed.Store(true)
	done := make(chan error, 1)
	go func() {
		_, err := eng.Ingest(ctx, engine.Delivery{Body: g.body(2, 0), ReceivedAt: time.Now(), AttemptsMade: 1})
		done <- err
	}()
	<-h.entered
	runs, _ := store.CheckpointerRuns(db)
	h.let()
	if err := <-done; !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("the delivery whose sync failed: %v", err)
	}
	store.KickCheckpointer(db)
	deadline := time.Now().Add(5 * time.Second)
	for !store.CheckpointerExited(db) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		store.KickCheckpointer(db)
	}
	if !store.CheckpointerExited(db) {
		t.Fatal("the checkpointer still runs after a failed sync")
	}
	// A checkpoint may have started before the sync failed was known,
	// never after.
	if after, _ := store.CheckpointerRuns(db); after > runs+1 {
		t.Errorf("%d background checkpoints after the sync failed", after-runs)
	}
}
