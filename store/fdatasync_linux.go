package store

import (
	"os"
	"syscall"
)

// fdatasync writes f's data, and the metadata needed to read it back (its
// size), to the disk: what SQLite's own sync of the WAL does.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
