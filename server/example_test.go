package server_test

import (
	"log"
	"net/http"
	"os"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
)

// An application mounts personad's handlers in its own mux: Persona posts
// to /webhooks/persona, and the application's own code (or another
// service) reads /v1/... . Use the store package's SQLite Store for
// durability; the in-memory store keeps nothing across restarts.
func Example_embedding() {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{AutoDecide: true})
	metrics := server.NewMetrics()
	webhook, err := server.NewWebhookHandler(server.WebhookConfig{
		Engine:  eng,
		Secrets: [][]byte{[]byte(os.Getenv("PERSONAD_WEBHOOK_SECRETS"))},
		Metrics: metrics,
	})
	if err != nil {
		log.Print(err) // no secret configured: refuse to start
		return
	}
	mux := http.NewServeMux()
	mux.Handle(server.WebhookPath, webhook)
	mux.Handle("/v1/", server.NewAPIHandler(server.APIConfig{Engine: eng, Token: os.Getenv("PERSONAD_API_TOKEN"), Metrics: metrics}))
	_ = &http.Server{Addr: "127.0.0.1:8080", Handler: mux} // then ListenAndServe
}
