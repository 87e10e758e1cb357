package engine_test

import (
	"testing"

	"github.com/personad/personad/engine"
	"github.com/personad/personad/engine/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) engine.Store { return engine.NewMemoryStore() })
}
