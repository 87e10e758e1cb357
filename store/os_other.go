//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"errors"
	"os"
)

// errWouldBlock is never returned where lockFile cannot lock.
var errWouldBlock = errors.New("lock held")

// lockFile does nothing on this platform: one writer per file is up to
// the operator.
func lockFile(*os.File) error { return nil }

// freeBytes cannot tell on this platform.
func freeBytes(string) (uint64, bool, error) { return 0, false, nil }
