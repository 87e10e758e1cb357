package store

// SetBackgroundCheckpoints turns the background checkpointer on or off for
// the stores opened until restore is called.
func SetBackgroundCheckpoints(on bool) (restore func()) {
	was := backgroundCheckpoints
	backgroundCheckpoints = on
	return func() { backgroundCheckpoints = was }
}

// CheckpointerRuns returns how many background checkpoints ran and failed.
func CheckpointerRuns(db *DB) (runs, errs int64) {
	return db.writer.ckpt.runs.Load(), db.writer.ckpt.errs.Load()
}

// KickCheckpointer tells the background checkpointer a commit happened.
func KickCheckpointer(db *DB) { db.writer.ckpt.committed() }

// CheckpointerExited reports whether the background checkpointer's
// goroutine returned.
func CheckpointerExited(db *DB) bool {
	select {
	case <-db.writer.ckpt.exited:
		return true
	default:
		return false
	}
}
