package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// lockPath is the file beside the database whose OS lock a writer holds.
func lockPath(path string) string { return path + ".lock" }

// writeLock is the OS file lock that makes one process at a time open a
// database for writing. SQLite's own locks only serialise transactions:
// two daemons on one file would each acknowledge, fold and cache as if
// alone. The lock is on a file beside the database, not the database
// itself, because SQLite's POSIX locks on that file are released by any
// close of it in the same process.
type writeLock struct{ f *os.File }

// acquireWriteLock takes the lock beside the database at path without
// waiting and writes this process's PID into it. The file is never
// removed: unlinking a lock file while another process waits on it would
// let two processes hold "the" lock.
//
// Errors: ErrLocked naming the holder's PID when another process holds it.
func acquireWriteLock(path string) (*writeLock, error) {
	lp := lockPath(path)
	// No O_TRUNC: until this process holds the lock, the PID in the file
	// is the holder's.
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, openError(path, err)
	}
	if err := lockFile(f); err != nil {
		defer f.Close()
		if !errors.Is(err, errWouldBlock) {
			return nil, openError(path, fmt.Errorf("lock %s: %w", lp, err))
		}
		holder := "another process"
		if b, rerr := os.ReadFile(lp); rerr == nil {
			if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); perr == nil && pid > 0 {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("store: %s: %w: %s holds %s (a running personad serve, rebuild or retain); stop it first, or use the read-only commands (inquiry, events, verify)",
			path, ErrLocked, holder, lp)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// A PID that could not be written only makes a refusal less specific.
	return &writeLock{f: f}, nil
}

// release drops the lock; nil does nothing.
func (l *writeLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
