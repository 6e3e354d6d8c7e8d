package proxy

import (
	"io"
	"net/http"
	"strings"
)

// Route names (the path label of /metrics).
const (
	routeMessages    = "/v1/messages"
	routeCountTokens = "/v1/messages/count_tokens"
	routeModels      = "/v1/models"
	routeHello       = "/api/hello"
	routeEvents      = "/api/event_logging/batch"
	routeStatus      = StatusPath
	routeMetrics     = MetricsPath
)

// route is what the proxy serves on a path: the methods it takes and
// whether the proxy key is asked.
type route struct {
	name    string
	methods []string
	key     bool
}

// routeOf is the route of path.
//
//   - HEAD|GET / and /api/hello: Claude Code's warm-up calls; 200, nothing
//     forwarded, no key asked (they tell nothing).
//   - POST /api/event_logging/batch: Claude Code's telemetry; 200 and
//     dropped, never forwarded.
//   - GET /metrics: Prometheus, no key (scrapers cannot send one; the proxy
//     listens on loopback, and the series hold no secret).
//   - GET /_piauth/status, GET /v1/models[/{id}], POST /v1/messages and
//     /v1/messages/count_tokens: the proxy key is asked.
func routeOf(path string) (route, bool) {
	switch {
	case path == "/" || path == routeHello:
		return route{name: routeHello, methods: []string{http.MethodGet, http.MethodHead}}, true
	case path == routeEvents:
		return route{name: routeEvents, methods: []string{http.MethodPost}}, true
	case path == routeMetrics:
		return route{name: routeMetrics, methods: []string{http.MethodGet}}, true
	case path == routeStatus:
		return route{name: routeStatus, methods: []string{http.MethodGet}, key: true}, true
	case path == modelsPath || strings.HasPrefix(path, modelsPrefix) && len(path) > len(modelsPrefix):
		return route{name: routeModels, methods: []string{http.MethodGet}, key: true}, true
	case path == messagesPath:
		return route{name: routeMessages, methods: []string{http.MethodPost}, key: true}, true
	case path == countTokensPath:
		return route{name: routeCountTokens, methods: []string{http.MethodPost}, key: true}, true
	}
	return route{}, false
}

// hello answers the warm-up calls: 200, an empty body for HEAD.
func (p *Proxy) hello(w http.ResponseWriter, r *http.Request, rec *record) {
	body := "piauth proxy\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rec.Status = http.StatusOK
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// dropEvents answers Claude Code's event logging with 200 and drops the
// batch (read within the body limit, so the connection stays reusable).
func (p *Proxy) dropEvents(w http.ResponseWriter, r *http.Request, rec *record) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, p.opts.MaxBodyBytes))
	w.Header().Set("Content-Type", "application/json")
	rec.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "{}")
}
