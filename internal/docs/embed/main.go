// Command embed is the README's embedding example: an application that
// serves Persona's webhooks and the query API from its own process.
package main

import (
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/server"
	"github.com/personad/personad/store"
)

func main() {
	db, err := store.Open("personad.db", store.Options{}) // or engine.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	// An event is acknowledged once committed: exiting without db.Close
	// loses nothing.
	eng := engine.New(db, engine.Policy{AutoDecide: true})
	eng.Subscribe(func(c engine.Change) {
		log.Printf("inquiry %s: %s -> %s, decision %q", c.InquiryID, c.FromStatus, c.ToStatus, c.Decision)
	})

	var secrets [][]byte // several during a rotation
	for _, s := range strings.Split(os.Getenv("PERSONAD_WEBHOOK_SECRETS"), ",") {
		secrets = append(secrets, []byte(strings.TrimSpace(s)))
	}
	webhook, err := server.NewWebhookHandler(server.WebhookConfig{Engine: eng, Secrets: secrets})
	if err != nil {
		log.Fatal(err) // server.ErrNoSecret: it never accepts unsigned webhooks
	}
	mux := http.NewServeMux()
	mux.Handle(server.WebhookPath, webhook) // Persona posts here
	api := server.NewAPIHandler(server.APIConfig{Engine: eng, Token: os.Getenv("PERSONAD_API_TOKEN")})
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:8081", api)) }()
	log.Fatal(http.ListenAndServe(":8080", mux))
}
