// Command receiver is an application's end of personad's push: it
// verifies each notification with the Standard Webhooks library, skips
// the ones it has handled (a change may come twice), and answers 2xx
// only once the change is handled, so personad sends the next one.
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("PERSONAD_NOTIFY_SECRET")) // whsec_...
	if err != nil {
		log.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // keep this in your database, with the change
	)
	http.HandleFunc("POST /hooks/personad", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Type string `json:"type"`
			Data struct {
				Seq         int64   `json:"seq"`
				InquiryID   string  `json:"inquiry_id"`
				ToStatus    *string `json:"to_status"`
				Decision    *string `json:"decision"`
				ReferenceID *string `json:"reference_id"` // your user id
				Redacted    bool    `json:"redacted"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if id := r.Header.Get("webhook-id"); !seen[id] {
			if d := msg.Data; d.Decision != nil && d.ReferenceID != nil {
				log.Printf("user %s: %s (inquiry %s)", *d.ReferenceID, *d.Decision, d.InquiryID)
			}
			seen[id] = true
		}
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:9000", nil))
}
