package server

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// OpenAPI is the OpenAPI 3.1 document of the query API, served at
// GET /v1/openapi.json. Tests validate every response the server and
// end-to-end suites get against it (server/openapitest), so it cannot
// drift from what the handlers answer.
//
//go:embed openapi.json
var OpenAPI []byte

// serveOpenAPI answers with the embedded document as it is.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
}
