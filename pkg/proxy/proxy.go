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
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

const (
	// DefaultAddr is the listen address when none is given.
	DefaultAddr = "127.0.0.1:8787"
	// DefaultMaxBodyBytes caps a client request body (413 beyond).
	DefaultMaxBodyBytes = 32 << 20
	// DefaultShutdownTimeout bounds how long a shutdown waits for requests
	// in flight to finish before cutting them.
	DefaultShutdownTimeout = 30 * time.Second
)

// Routes served by the proxy.
const (
	messagesPath    = "/v1/messages"
	countTokensPath = "/v1/messages/count_tokens"
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
	opts.Upstream = strings.TrimRight(opts.Upstream, "/")
	p := &Proxy{
		opts:     opts,
		hosts:    append([]string(nil), loopbackHosts...),
		origins:  map[string]struct{}{},
		inFlight: make(chan struct{}, opts.MaxInFlight),
		bodies:   semaphore.NewWeighted(opts.MaxBodyBytesInFlight),
		addHop:   !strings.EqualFold(opts.Upstream, OfficialAPI),
	}
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
	rec := &record{Time: p.opts.Now(), Method: r.Method, Path: r.URL.Path}
	defer func() {
		rec.Latency = p.opts.Now().Sub(rec.Time)
		if rec.Key == "" && p.opts.KeyLabel != nil && rec.Status < 400 {
			rec.Key = p.opts.KeyLabel()
		}
		p.log(rec)
		p.record(r, rec)
	}()

	if p.guard(w, r, rec) {
		return
	}
	switch r.URL.Path {
	case messagesPath, countTokensPath:
	default:
		p.fail(w, rec, http.StatusNotFound, "not_found_error", "Not found: "+r.URL.Path)
		return
	}
	if p.preflight(w, r, rec) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.fail(w, rec, http.StatusMethodNotAllowed, "invalid_request_error",
			"Method not allowed: "+r.Method+" "+r.URL.Path+" (use POST)")
		return
	}
	if msg := p.checkKey(r); msg != "" {
		p.fail(w, rec, http.StatusUnauthorized, "authentication_error", msg)
		return
	}
	if !p.acquire() {
		p.busy(w, rec, strconv.Itoa(p.opts.MaxInFlight)+" requests in flight, the proxy's limit")
		return
	}
	defer p.releaseSlot()
	p.forward(w, r, rec)
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
