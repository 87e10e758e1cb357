package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/qmuntal/stateless"
)

// The lifecycle is configured once, on one stateless machine whose state
// lives in the context of each call, and shared by every fold. At start-up
// the machine is asked, for every status, which triggers it permits and
// where each leads; folding then looks transitions up in that table, so the
// stateless configuration is the single source of truth without paying for
// a Fire per event.
var lifecycle = newLifecycle()

type lifecycleTable struct {
	machine *stateless.StateMachine
	// edge[from][to] is the trigger of the direct transition, "" if none.
	edge [8][8]string
	// via[from][to] lists the statuses strictly between from and to on a
	// shortest path; reach[from][to] says whether any path exists.
	via   [8][8][]Status
	reach [8][8]bool
}

type stateKey struct{}

// newMachine configures the lifecycle of reference section 5 on a machine
// that keeps its state in a *Status carried by the context. A context with
// no state reads as created, which is what ToGraph renders from.
func newMachine() *stateless.StateMachine {
	sm := stateless.NewStateMachineWithExternalStorage(
		func(ctx context.Context) (stateless.State, error) {
			if p, ok := ctx.Value(stateKey{}).(*Status); ok {
				return *p, nil
			}
			return StatusCreated, nil
		},
		func(ctx context.Context, s stateless.State) error {
			if p, ok := ctx.Value(stateKey{}).(*Status); ok {
				*p = s.(Status)
			}
			return nil
		},
		stateless.FiringImmediate,
	)
	sm.Configure(StatusCreated).
		Permit(EventStarted, StatusPending).
		Permit(EventExpired, StatusExpired)
	sm.Configure(StatusPending).
		Permit(EventCompleted, StatusCompleted).
		Permit(EventFailed, StatusFailed).
		Permit(EventExpired, StatusExpired).
		Permit(EventMarkedForReview, StatusNeedsReview).
		Permit(EventApproved, StatusApproved).
		Permit(EventDeclined, StatusDeclined)
	for _, s := range []Status{StatusCompleted, StatusFailed, StatusExpired} {
		sm.Configure(s).
			Permit(EventMarkedForReview, StatusNeedsReview).
			Permit(EventApproved, StatusApproved).
			Permit(EventDeclined, StatusDeclined)
	}
	sm.Configure(StatusExpired).Permit(TriggerResume, StatusPending)
	sm.Configure(StatusNeedsReview).
		Permit(EventApproved, StatusApproved).
		Permit(EventDeclined, StatusDeclined)
	// A person may change a decision: a re-decision.
	sm.Configure(StatusApproved).Permit(EventDeclined, StatusDeclined)
	sm.Configure(StatusDeclined).Permit(EventApproved, StatusApproved)
	return sm
}

func newLifecycle() *lifecycleTable {
	t := &lifecycleTable{machine: newMachine()}
	for _, from := range Statuses {
		for _, trigger := range mustPermitted(t.machine, from) {
			to := fire(t.machine, from, trigger)
			t.edge[from.index()][to.index()] = trigger
		}
	}
	for _, from := range Statuses {
		t.shortestPaths(from)
	}
	return t
}

// mustPermitted asks the machine which triggers it permits in state from.
func mustPermitted(sm *stateless.StateMachine, from Status) []string {
	ctx := context.WithValue(context.Background(), stateKey{}, &from)
	triggers, err := sm.PermittedTriggersCtx(ctx)
	if err != nil {
		panic(fmt.Sprintf("engine: lifecycle misconfigured: %v", err))
	}
	out := make([]string, len(triggers))
	for i, tr := range triggers {
		out[i] = tr.(string)
	}
	return out
}

// fire runs trigger from state from and returns where the machine ends up.
func fire(sm *stateless.StateMachine, from Status, trigger string) Status {
	s := from
	ctx := context.WithValue(context.Background(), stateKey{}, &s)
	if err := sm.FireCtx(ctx, trigger); err != nil {
		panic(fmt.Sprintf("engine: lifecycle misconfigured: %v", err))
	}
	return s
}

// shortestPaths runs a breadth-first search from one status, visiting
// neighbours in lifecycle order so the chosen path is deterministic.
func (t *lifecycleTable) shortestPaths(from Status) {
	f := from.index()
	prev := [8]int{}
	for i := range prev {
		prev[i] = -1
	}
	var seen [8]bool
	seen[f] = true
	queue := []int{f}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for next := range 8 {
			if seen[next] || t.edge[cur][next] == "" {
				continue
			}
			seen[next], prev[next] = true, cur
			queue = append(queue, next)
		}
	}
	for to := range 8 {
		if to == f || !seen[to] {
			continue
		}
		t.reach[f][to] = true
		var via []Status
		for p := prev[to]; p != f; p = prev[p] {
			via = append([]Status{Statuses[p]}, via...)
		}
		t.via[f][to] = via
	}
}

// Transition returns the trigger that moves an inquiry from one status to
// another directly, and whether the lifecycle permits it.
func Transition(from, to Status) (trigger string, ok bool) {
	f, t := from.index(), to.index()
	if f < 0 || t < 0 {
		return "", false
	}
	trigger = lifecycle.edge[f][t]
	return trigger, trigger != ""
}

// Path returns the statuses an inquiry must pass through, strictly between
// from and to, on a shortest permitted path, and whether any path exists.
func Path(from, to Status) (via []Status, ok bool) {
	f, t := from.index(), to.index()
	if f < 0 || t < 0 {
		return nil, false
	}
	return lifecycle.via[f][t], lifecycle.reach[f][t]
}

// GraphDOT returns the lifecycle as Graphviz DOT, as stateless renders it
// from a machine in created. lifecycle.dot at the repository root is this
// output byte for byte.
func GraphDOT() string { return lifecycle.machine.ToGraph() }

// GraphMermaid returns the lifecycle as a Mermaid stateDiagram-v2, for
// Markdown documents that GitHub renders.
func GraphMermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n    [*] --> created\n")
	for f, from := range Statuses {
		for t, to := range Statuses {
			if trigger := lifecycle.edge[f][t]; trigger != "" {
				fmt.Fprintf(&b, "    %s --> %s: %s\n", from, to, trigger)
			}
		}
	}
	return b.String()
}
