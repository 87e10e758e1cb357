//go:build !linux

package store

import "os"

// fdatasync writes f's data to the disk (fsync where there is no
// fdatasync; F_FULLFSYNC on macOS).
func fdatasync(f *os.File) error { return f.Sync() }
