package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// An application mounts personad's handlers in its own mux: Persona posts
// to /webhooks/persona, and the application asks /v1/... whether a user may
// proceed. Use the store package's SQLite Store for durability; the
// in-memory store keeps nothing across restarts. Read the secret from the
// environment (PERSONAD_WEBHOOK_SECRETS), never from a flag.
func Example_embedding() {
	secret := []byte("wbhsec_example")
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{AutoDecide: true})
	metrics := server.NewMetrics()
	webhook, err := server.NewWebhookHandler(server.WebhookConfig{Engine: eng, Secrets: [][]byte{secret}, Metrics: metrics})
	if err != nil {
		panic(err) // no secret configured: refuse to start
	}
	mux := http.NewServeMux()
	mux.Handle(server.WebhookPath, webhook)
	mux.Handle("/v1/", server.NewAPIHandler(server.APIConfig{Engine: eng, Metrics: metrics}))
	app := httptest.NewServer(mux)
	defer app.Close()

	// What Persona would send.
	body := []byte(`{"data":{"type":"event","id":"evt_1","attributes":{"name":"inquiry.completed",
		"created-at":"2024-03-15T18:35:00.000Z","payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"status":"completed"}}}}}}`)
	req, _ := http.NewRequest(http.MethodPost, app.URL+server.WebhookPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(server.SignatureHeader, server.SignatureHeaderValue(body, time.Now(), secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	ack, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %s", resp.StatusCode, ack)

	resp, err = http.Get(app.URL + "/v1/inquiries/inq_1/decision?wait=1s")
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	io.Copy(&out, resp.Body)
	resp.Body.Close()
	fmt.Println(bytes.Contains(out.Bytes(), []byte(`"decision":"approved"`)))
	// Output:
	// 200 {"event_id":"evt_1","outcome":"applied","duplicate":false}
	// true
}
