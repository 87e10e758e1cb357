package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The event log is a hash chain: each row's chain column holds
//
//	chain[n] = SHA-256(chain[n-1] || seq || event_id || sha256 || received_at)
//
// with chain[0] 32 zero bytes. It binds what identifies an event and the
// hash of its body as received, not the stored body, so scrubbing a
// redacted inquiry's bodies never breaks it.

// ChainHead is a position in the hash chain: the seq of an event and its
// link. The head of an empty log is seq 0 with the zero link.
type ChainHead struct {
	Seq   int64
	Chain [32]byte
}

// String returns "SEQ:HEX", the form ParseChainHead reads, with the link
// in 64 lowercase hex digits.
func (h ChainHead) String() string {
	return strconv.FormatInt(h.Seq, 10) + ":" + hex.EncodeToString(h.Chain[:])
}

// ParseChainHead reads the "SEQ:HEX" form String writes (a head printed
// by personad verify or served at GET /v1/audit/head). It returns an error
// when seq is not a whole number ≥ 0 or the link is not 64 hex digits.
func ParseChainHead(s string) (ChainHead, error) {
	seqText, hexText, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return ChainHead{}, fmt.Errorf("chain head %q is not SEQ:HEX", s)
	}
	var h ChainHead
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil || seq < 0 {
		return ChainHead{}, fmt.Errorf("chain head %q: seq %q is not a whole number ≥ 0", s, seqText)
	}
	h.Seq = seq
	if len(hexText) != hex.EncodedLen(len(h.Chain)) {
		return ChainHead{}, fmt.Errorf("chain head %q: the link is not %d hex digits", s, hex.EncodedLen(len(h.Chain)))
	}
	if _, err := hex.Decode(h.Chain[:], []byte(hexText)); err != nil {
		return ChainHead{}, fmt.Errorf("chain head %q: the link is not %d hex digits", s, 2*len(h.Chain))
	}
	return h, nil
}

// chainLink returns the link of the event at seq, given the link before
// it (the zero link before seq 1):
//
//	SHA-256(prev (32 bytes) || seq (8 bytes, big-endian) || eventID (its bytes) ||
//	        bodySHA (32 bytes) || receivedAtMillis (8 bytes, big-endian))
//
// bodySHA is the SHA-256 of the body as received (the events.sha256
// column) and receivedAtMillis the first delivery in unix milliseconds
// (events.received_at). Only the event id has a variable length, and what
// precedes and follows it has a fixed one, so no two inputs encode alike.
func chainLink(prev [32]byte, seq int64, eventID string, bodySHA [32]byte, receivedAtMillis int64) [32]byte {
	var buf [160]byte // room for ids of up to 88 bytes without a heap allocation
	b := append(buf[:0], prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = append(b, eventID...)
	b = append(b, bodySHA[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(receivedAtMillis))
	return sha256.Sum256(b)
}

// readHead returns the last event's seq and stored link, or the zero head
// of an empty log. linked is false when that row holds no well-formed link
// (its link is then the zero one): only a hand-made row can lack one.
func readHead(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (h ChainHead, linked bool, err error) {
	var link []byte
	err = q.QueryRowContext(ctx, `SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &link)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ChainHead{}, true, nil
	case err != nil:
		return ChainHead{}, false, err
	}
	linked = len(link) == len(h.Chain)
	if linked {
		copy(h.Chain[:], link)
	}
	return h, linked, nil
}

// chainPage is how many rows chainExisting reads at a time.
const chainPage = 1000

// chainExisting is the part of schema version 4's Go step that computes
// the hash chain links of the rows stored before it, in seq order, each
// from the link of the row before. It reads a page of rows at a time, and
// never their bodies, so a large log needs little memory. A row that has
// a link already keeps it, and the next is chained from it.
func chainExisting(ctx context.Context, tx *sql.Tx) error {
	type row struct {
		seq, receivedAt int64
		eventID         string
		sum, link       []byte
	}
	var prev [32]byte
	page := make([]row, 0, chainPage)
	for after := int64(0); ; {
		rows, err := tx.QueryContext(ctx, `SELECT seq, event_id, sha256, received_at, chain FROM events
			WHERE seq > ? ORDER BY seq LIMIT ?`, after, chainPage)
		if err != nil {
			return err
		}
		page = page[:0]
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.eventID, &r.sum, &r.receivedAt, &r.link); err != nil {
				rows.Close()
				return err
			}
			page = append(page, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, r := range page {
			if r.link != nil {
				copy(prev[:], r.link)
				continue
			}
			var sum [32]byte
			copy(sum[:], r.sum)
			prev = chainLink(prev, r.seq, r.eventID, sum, r.receivedAt)
			if _, err := tx.ExecContext(ctx, `UPDATE events SET chain = ? WHERE seq = ?`, prev[:], r.seq); err != nil {
				return fmt.Errorf("chain event #%d: %w", r.seq, err)
			}
		}
		after = page[len(page)-1].seq
	}
}

// Head returns the last event's seq and link, read through the read pool,
// for an operator to anchor elsewhere and later check with Verify.
//
// Errors: an error matching ErrTampered when the last row holds no
// well-formed link, engine.ErrUnavailable when the read failed.
func (db *DB) Head(ctx context.Context) (ChainHead, error) {
	h, linked, err := readHead(ctx, db.read)
	if err == nil {
		err = db.awaitDurable(ctx) // a head handed out must not vanish
	}
	if err != nil {
		return ChainHead{}, unavailable("read chain head", err)
	}
	if !linked {
		return ChainHead{}, fmt.Errorf("store: event #%d has no chain link: %w", h.Seq, ErrTampered)
	}
	return h, nil
}
