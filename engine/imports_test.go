package engine_test

import (
	"go/build"
	"testing"
)

// TestEngineImportsNoIO keeps the core free of SQL and HTTP: store and
// server import engine, never the other way round.
func TestEngineImportsNoIO(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{
		"database/sql": true, "net/http": true, "modernc.org/sqlite": true,
		"github.com/julienschmidt/httprouter": true, "os": true, "net": true,
	}
	for _, imp := range pkg.Imports {
		if forbidden[imp] {
			t.Errorf("engine imports %s", imp)
		}
	}
}
