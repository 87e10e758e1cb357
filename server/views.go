package server

import (
	"cmp"

	"github.com/personad/personad/engine"
)

// EventView is one event of an inquiry's history as the API and the
// command line show it.
type EventView struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	CreatedAt  string          `json:"created_at"`
	ReceivedAt string          `json:"received_at"`
	Status     *engine.Status  `json:"status"`
	Outcome    engine.Outcome  `json:"outcome"`
	From       *engine.Status  `json:"from"`
	To         *engine.Status  `json:"to"`
	Via        []engine.Status `json:"via"`
	Deliveries int             `json:"deliveries"`
	// Source is how the event first arrived: engine.SourceWebhook, or
	// engine.SourceAPI when reconciliation fetched it from Persona.
	Source string `json:"source"`
}

// EventViews renders a history in fold order.
func EventViews(hist []engine.Entry) []EventView {
	out := make([]EventView, len(hist))
	for i, e := range hist {
		out[i] = EventView{
			ID: e.EventID, Name: e.Name,
			CreatedAt:  engine.FormatTime(e.CreatedAt),
			ReceivedAt: engine.FormatTime(e.ReceivedAt),
			Status:     optStatus(e.Status), Outcome: e.Step.Outcome,
			From: optStatus(e.Step.From), To: optStatus(e.Step.To),
			Via: append([]engine.Status{}, e.Step.Via...), Deliveries: e.Deliveries,
			Source: cmp.Or(e.Source, engine.SourceWebhook),
		}
	}
	return out
}

func optStatus(s engine.Status) *engine.Status {
	if s == "" {
		return nil
	}
	return &s
}
