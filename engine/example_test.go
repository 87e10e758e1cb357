package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/personad/personad/engine"
)

// An application embeds the engine: it hands each verified webhook body to
// Ingest and asks the engine, not Persona, whether a user may proceed.
// Deliveries may come in any order; the result does not depend on it.
func Example() {
	eng := engine.New(engine.NewMemoryStore(), engine.Policy{AutoDecide: true})
	eng.Subscribe(func(c engine.Change) {
		fmt.Printf("change %d: %s -> %s (decision %q)\n", c.Seq, c.FromStatus, c.ToStatus, c.Decision)
	})

	body := func(id, name, status, at string) []byte {
		return []byte(`{"data":{"type":"event","id":"` + id + `","attributes":{"name":"` + name +
			`","created-at":"` + at + `","payload":{"data":{"type":"inquiry","id":"inq_1","attributes":{"status":"` + status + `"}}}}}}`)
	}
	deliveries := [][]byte{
		body("evt_2", "inquiry.completed", "completed", "2024-03-15T18:35:00.000Z"), // arrives first
		body("evt_1", "inquiry.started", "pending", "2024-03-15T18:31:00.000Z"),     // late
		body("evt_2", "inquiry.completed", "completed", "2024-03-15T18:35:00.000Z"), // a retry
	}
	for _, b := range deliveries {
		res, err := eng.Ingest(context.Background(), engine.Delivery{Body: b, ReceivedAt: time.Now()})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: %s duplicate=%t\n", res.EventID, res.Outcome, res.Duplicate)
	}
	inq, _ := eng.Inquiry(context.Background(), "inq_1")
	fmt.Println("status:", inq.Status, "decision:", inq.Decision)
	// Output:
	// change 1:  -> completed (decision "approved")
	// evt_2: applied duplicate=false
	// evt_1: applied duplicate=false
	// evt_2: applied duplicate=true
	// status: completed decision: approved
}
