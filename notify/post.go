package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/personad/personad/engine"
)

// maxResponse is how much of an answer is read: enough to reuse the
// connection, not to be held up by a receiver that talks.
const maxResponse = 64 << 10

// post makes one attempt at sending c: the message with the inquiry's
// projection as it is now, signed for now. It returns the status code.
func (p *pusher) post(c engine.Change) (int, error) {
	ctx, cancel := context.WithTimeout(p.abort, p.cfg.Timeout)
	defer cancel()
	inq, err := p.cfg.Engine.Inquiry(ctx, c.InquiryID)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return 0, err
	}
	body, err := NewMessage(c, inq).encode()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	setHeaders(req.Header, p.cfg.Key, MessageID(c.Seq), p.cfg.Now(), body)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	return resp.StatusCode, nil
}
