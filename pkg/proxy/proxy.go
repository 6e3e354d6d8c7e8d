// Package proxy serves a local Anthropic Messages endpoint that gives any
// client able to set a base URL (pi, the official SDKs, curl) piauth's
// credentials, OAuth shaping, refresh and key rotation.
//
// The proxy itself only routes, checks the client's proxy key, forwards
// request bodies and passes answers back (mapping tool names back to the
// client's spelling). Credentials, shaping (pkg/stream) and rotation
// (pkg/rotate) are the business of the *http.Client it is given, whose
// Transport does them for every request; there is no second implementation
// of either here.
package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

const (
	// DefaultAddr is the listen address when none is given.
	DefaultAddr = "127.0.0.1:8787"
	// DefaultMaxBodyBytes caps a client request body (413 beyond).
	DefaultMaxBodyBytes = 32 << 20
	// DefaultMaxRetryAfter caps the retry-after the proxy sends: SDKs obey
	// it, and a subscription window can ask for hours.
	DefaultMaxRetryAfter = 60 * time.Second
	// DefaultShutdownTimeout bounds how long a shutdown waits for requests
	// in flight to finish before cutting them.
	DefaultShutdownTimeout = 30 * time.Second
)

// Routes served by the proxy.
const (
	messagesPath    = "/v1/messages"
	countTokensPath = "/v1/messages/count_tokens"
	// MetricsPath serves the Prometheus metrics, without the proxy key.
	MetricsPath = "/metrics"
)

// Options configures a Proxy.
type Options struct {
	// Client sends every upstream request. Its Transport must add the
	// credentials and the OAuth shaping (stream.TokenTransport, or
	// rotate.Transport for a pool). Required.
	Client *http.Client
	// Upstream is the API base URL, e.g. https://api.anthropic.com.
	Upstream string
	// ClientKey is the key clients must present as x-api-key or
	// Authorization: Bearer; "" turns access control off.
	ClientKey string
	// AcceptKey, when set, is asked about a presented key that is not
	// ClientKey; true lets the request pass. The CLI uses it to accept the
	// user's own Anthropic credentials (what pi sends when logged in): a
	// client holding one gains nothing through the proxy it did not have.
	AcceptKey func(key string) bool
	// Log receives one line per request (nil: no log).
	Log io.Writer
	// JSONLog writes the log as NDJSON instead of text.
	JSONLog bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// KeyLabel, when set, names the pool key in use ("2/3") for the log.
	KeyLabel func() string
	// MaxBodyBytes caps request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// ShutdownTimeout bounds the graceful shutdown of Serve
	// (DefaultShutdownTimeout when 0).
	ShutdownTimeout time.Duration
	// Hosts are Host names served besides localhost, 127.0.0.1 and ::1
	// (ServeListener adds the listen host); any other Host gets 403.
	Hosts []string
	// AllowOrigins are the browser origins ("http://localhost:3000") whose
	// requests are served, with CORS headers; a request with any other
	// Origin header gets 403.
	AllowOrigins []string
	// MaxInFlight caps the requests forwarded at once (DefaultMaxInFlight
	// when 0); one more gets 529.
	MaxInFlight int
	// MaxBodyBytesInFlight caps the request body bytes held by all requests
	// together (DefaultMaxBodyBytesInFlight when 0, at least MaxBodyBytes).
	MaxBodyBytesInFlight int64
	// MaxEventBytes caps one upstream SSE event (DefaultMaxEventBytes when 0).
	MaxEventBytes int
	// MaxConns caps the client connections ServeListener keeps open at once
	// (DefaultMaxConns when 0).
	MaxConns int
	// Ledger, when set, is handed every Messages answer (and failure) that
	// went upstream, once its log record is complete (ledger.go).
	Ledger Ledger
	// MaxRetryAfter caps every retry-after sent to clients, the proxy's own
	// and upstream's (DefaultMaxRetryAfter when 0).
	MaxRetryAfter time.Duration
	// Pool, when set, reads the key pool: the key states of /_piauth/status
	// and /metrics, and which key's rate-limit headers a 429 carries.
	Pool func() (*keystore.Pool, error)
	// ListModels, when set, asks the upstream's GET /v1/models with the
	// proxy's credential (stream.Service.ListModels); GET /v1/models
	// merges its answer with the built-in table, or serves the table alone
	// when it fails.
	ListModels func(ctx context.Context) ([]stream.APIModel, error)
	// Service is the model table (stream.Builtin() when nil).
	Service *stream.Service
	// Version is piauth's version, reported by /_piauth/status.
	Version string
	// MaxSessions bounds the session table (DefaultMaxSessions when 0);
	// SessionIdle forgets a session unused that long (DefaultSessionIdle
	// when 0).
	MaxSessions int
	SessionIdle time.Duration
	// SharedSessions, when set (the pool lives in a shared store such as
	// Redis), keeps each session's key there too, so a session continued
	// through another proxy or machine stays on its key. A failing shared
	// store falls back to this proxy's own table.
	SharedSessions keystore.SessionBackend
}

// Proxy is the http.Handler serving the proxied Messages API. Create it with
// New; it is safe for concurrent use.
type Proxy struct {
	opts      Options
	keyHash   [sha256.Size]byte
	logMu     sync.Mutex
	hosts     []string            // Host names served
	anyIPHost bool                // listening on a wildcard address: any IP literal Host
	origins   map[string]struct{} // normalised AllowOrigins
	inFlight  chan struct{}       // MaxInFlight slots
	bodies    *semaphore.Weighted // MaxBodyBytesInFlight
	addHop    bool                // send HopHeader upstream

	started    time.Time // for uptime
	listen     string    // http://HOST:PORT, set by ServeListener
	sessions   *sessions
	limits     limitMemory
	stats      stats
	metrics    *metrics
	modelCache modelCache
	events     eventBufs // buffers of streamed events (passStream)
}

// New returns a Proxy configured by opts.
func New(opts Options) *Proxy {
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxBodyBytesInFlight <= 0 {
		opts.MaxBodyBytesInFlight = DefaultMaxBodyBytesInFlight
	}
	opts.MaxBodyBytesInFlight = max(opts.MaxBodyBytesInFlight, opts.MaxBodyBytes)
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = DefaultMaxEventBytes
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.SessionIdle <= 0 {
		opts.SessionIdle = DefaultSessionIdle
	}
	opts.Upstream = strings.TrimRight(opts.Upstream, "/")
	p := &Proxy{
		opts:     opts,
		hosts:    append([]string(nil), loopbackHosts...),
		origins:  map[string]struct{}{},
		inFlight: make(chan struct{}, opts.MaxInFlight),
		bodies:   semaphore.NewWeighted(opts.MaxBodyBytesInFlight),
		addHop:   !strings.EqualFold(opts.Upstream, OfficialAPI),
		started:  opts.Now(),
		sessions: newSessions(opts.MaxSessions, opts.SessionIdle),
	}
	p.metrics = newMetrics(p)
	for _, h := range opts.Hosts {
		p.hosts = append(p.hosts, hostName(h))
	}
	for _, o := range opts.AllowOrigins {
		p.origins[normOrigin(o)] = struct{}{}
	}
	if opts.ClientKey != "" {
		p.keyHash = sha256.Sum256([]byte(opts.ClientKey))
	}
	return p
}

// ServeHTTP routes a request, checks the client key and forwards it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &record{Time: p.opts.Now(), Method: r.Method, Path: r.URL.Path, Query: maskString(r.URL.RawQuery)}
	cw := &countingWriter{ResponseWriter: w, n: &p.stats.bytesOut, start: time.Now()}
	cw.onAnswer = func(status int) { p.answered(rec, cw, status) }
	w = cw
	defer func() {
		rec.Latency = p.opts.Now().Sub(rec.Time)
		if rec.Key == "" && p.opts.KeyLabel != nil && rec.Status < 400 && rec.upstream {
			rec.Key = p.opts.KeyLabel()
		}
		p.log(rec)
		p.record(r, rec)
		p.finished(rec, cw)
	}()

	if p.guard(w, r, rec) {
		return
	}
	rt, ok := routeOf(r.URL.Path)
	if !ok {
		p.fail(w, rec, http.StatusNotFound, "not_found_error", "Not found: "+r.URL.Path)
		return
	}
	rec.route = rt.name
	if p.preflight(w, r, rec) {
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		p.fail(w, rec, http.StatusMethodNotAllowed, "invalid_request_error",
			"Method not allowed: "+r.Method+" "+r.URL.Path+" (use "+strings.Join(rt.methods, " or ")+")")
		return
	}
	if rt.key {
		if msg := p.checkKey(r); msg != "" {
			p.fail(w, rec, http.StatusUnauthorized, "authentication_error", msg)
			return
		}
	}
	switch rt.name {
	case routeHello:
		p.hello(w, r, rec)
	case routeEvents:
		p.dropEvents(w, r, rec)
	case routeMetrics:
		rec.Status = http.StatusOK
		p.metrics.handler().ServeHTTP(w, r)
	case routeStatus:
		p.serveStatus(w, rec)
	case routeModels:
		p.serveModels(w, r, rec)
	default: // Messages, count_tokens
		if !p.acquire() {
			p.busy(w, rec, strconv.Itoa(p.opts.MaxInFlight)+" requests in flight, the proxy's limit")
			return
		}
		defer p.releaseSlot()
		p.forward(w, r, rec)
	}
}

// checkKey returns "" when the request may pass, else why not. The
// presented key is compared with the proxy key in constant time (both are
// hashed first, so not even the length leaks).
func (p *Proxy) checkKey(r *http.Request) string {
	if p.opts.ClientKey == "" {
		return ""
	}
	presented := false
	for _, k := range []string{r.Header.Get("X-Api-Key"), bearer(r.Header.Get("Authorization"))} {
		if k == "" {
			continue
		}
		presented = true
		h := sha256.Sum256([]byte(k))
		if subtle.ConstantTimeCompare(h[:], p.keyHash[:]) == 1 || p.opts.AcceptKey != nil && p.opts.AcceptKey(k) {
			return ""
		}
	}
	if !presented {
		return "x-api-key header is required: use the proxy key (piauth proxy --show-key) as x-api-key or Authorization: Bearer"
	}
	return "invalid x-api-key: this is not the proxy key (piauth proxy --show-key)"
}

// bearer returns the token of an "Authorization: Bearer TOKEN" value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
