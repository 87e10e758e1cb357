//go:build !unix

package main

import "time"

// processCPU is unknown here: bench reports no CPU figures.
func processCPU() (time.Duration, bool) { return 0, false }
