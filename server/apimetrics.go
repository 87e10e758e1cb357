package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched is the route label of a request no route took (404, 405).
const routeUnmatched = "unmatched"

// apiRequests counts query API requests by route pattern and status
// code. The label is the pattern a route was registered with
// ("/v1/inquiries/:id"), never the raw path, so that ids cannot grow the
// number of series.
type apiRequests struct{ total *prometheus.CounterVec }

// newAPIRequests registers personad_api_requests_total on m's registry,
// or reuses the one registered there by an earlier API handler.
func newAPIRequests(m *Metrics) *apiRequests {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "personad_api_requests_total",
		Help: "Query API requests by route pattern and HTTP status code (route \"" + routeUnmatched + "\" when no route matched).",
	}, []string{"route", "code"})
	if err := m.Registry.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) {
			panic(err)
		}
		c = dup.ExistingCollector.(*prometheus.CounterVec)
	}
	return &apiRequests{total: c}
}

// handle counts the answers of h under route.
func (m *apiRequests) handle(route string, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		rec := &statusRecorder{ResponseWriter: w}
		finished := false
		defer func() {
			code := rec.code
			switch {
			case !finished: // a panic, which the router answers with a 500
				code = http.StatusInternalServerError
			case code == 0:
				code = http.StatusOK
			}
			m.total.WithLabelValues(route, strconv.Itoa(code)).Inc()
		}()
		h(rec, r, p)
		finished = true
	}
}

// handler counts the answers of a plain handler under route.
func (m *apiRequests) handler(route string, h http.Handler) http.Handler {
	counted := m.handle(route, func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { h.ServeHTTP(w, r) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { counted(w, r, nil) })
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (pprof's
// profile and trace set write deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
