// Package emulator is a strict local stand-in for Anthropic's OAuth endpoints
// (authorize, token, usage), the Messages API and the Models API, for tests,
// benchmarks and offline demos.
//
// The Emulator is an http.Handler; mount it with httptest or run it with
// Serve. It enforces what the real service enforces in late 2026 and
// answers violations with the real error shape and status: served models
// only (404 for retired and unknown ids and aliases), at most 4
// cache_control blocks, tool name syntax, and for Claude Pro/Max OAuth
// tokens Bearer auth without x-api-key, the oauth-2025-04-20 beta, the
// per-model Claude Code version floor (user-agent claude-cli/<v>), the
// Claude Code identity as first system block (else a fake 429 for opus,
// sonnet and fable) and the third-party tool-name classifier. Every such
// fact is data (service.json, see Service) that a Scenario can override.
//
// Behaviour per token without a scenario: any `sk-ant-oat…` bearer token (or
// `sk-ant-api…` x-api-key) the emulator did not mint is accepted unless it
// contains a marker (Service.Markers): "invalid" (401), "disabled" (403),
// "ratelimited" (429 with limit headers), "overloaded" (529), "midstream"
// (200 stream broken by an overloaded error event), "extrausage" (400
// third-party), "outofextra" (400 out of extra usage) or "longcontext" (429
// without limit headers). Tokens it minted are checked for expiry and
// revocation. A Scenario (see ParseScenario) scripts per-token outcome
// sequences, replies and usage.
package emulator

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/when"
)

// DefaultClientID is the OAuth client id of Claude Code, the only one the
// emulator accepts unless Options.ClientID says otherwise.
const DefaultClientID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"

// DefaultExpiresIn is the access token lifetime in seconds.
const DefaultExpiresIn = 28800

// ManualRedirectURI is the paste-flow redirect URI; authorize answers it
// with a page showing `code#state` instead of a redirect.
const ManualRedirectURI = "https://platform.claude.com/oauth/code/callback"

// IdentityText must be the first system block of an OAuth request (the
// default of Service.IdentityText).
const IdentityText = "You are Claude Code, Anthropic's official CLI for Claude."

// OAuthBeta is the beta flag OAuth requests must carry.
const OAuthBeta = "oauth-2025-04-20"

// Options configures an Emulator. Zero values select the defaults.
type Options struct {
	Scenario  *Scenario                                        // nil: markers only
	Now       func() time.Time                                 // default time.Now
	ExpiresIn int                                              // seconds; default scenario's, else 28800
	ClientID  string                                           // default DefaultClientID
	Log       io.Writer                                        // one line per request; nil: silent
	Rand      io.Reader                                        // source for ids and tokens; default crypto/rand
	Sleep     func(ctx context.Context, d time.Duration) error // delays; default waits on a timer or ctx
}

// Stats are the emulator's counters, as served by GET /_emulator/stats.
type Stats struct {
	Requests          map[string]int64 `json:"requests"` // by URL path
	Tokens            map[string]int64 `json:"tokens"`   // by fingerprint of the presented token
	Refreshes         int64            `json:"refreshes"`
	RejectedRefreshes int64            `json:"rejected_refreshes"`
	Logins            int64            `json:"logins"`
	// VersionRefused counts requests refused with claude_code_version_too_old.
	VersionRefused int64 `json:"version_refused"`
	// IdentityRefused counts the fake 429s for a missing Claude Code identity.
	IdentityRefused int64 `json:"identity_refused"`
	// ThirdPartyRefused counts classifier refusals of tool names.
	ThirdPartyRefused int64 `json:"third_party_refused"`
	// UsageCalls counts GET /api/oauth/usage calls by token fingerprint.
	UsageCalls map[string]int64 `json:"usage_calls"`
}

// Emulator is the http.Handler. Create it with New; safe for concurrent use.
type Emulator struct {
	opts     Options
	scenario *Scenario
	rules    *rules
	mux      *http.ServeMux

	mu       sync.Mutex
	stats    Stats
	codes    map[string]*authCode
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	seen     map[string]bool // foreign refresh tokens already used once
	seq      []int           // per scenario token rule: outcomes consumed
	useq     []int           // per scenario token rule: usage outcomes consumed
	accounts int
	logMu    sync.Mutex
	randMu   sync.Mutex
}

// New returns an Emulator configured by opts. It panics when
// opts.Scenario.Service does not compile (a bad pattern or version);
// ParseScenario reports those as errors.
func New(opts Options) *Emulator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Sleep == nil {
		opts.Sleep = when.Sleep
	}
	sc := opts.Scenario
	if sc == nil {
		sc = &Scenario{}
	}
	svc := sc.Service
	if svc == nil {
		svc = DefaultService()
	}
	rs, err := svc.compile()
	if err != nil {
		panic(fmt.Sprintf("emulator: invalid service: %v", err))
	}
	if opts.ExpiresIn <= 0 {
		opts.ExpiresIn = sc.ExpiresIn
	}
	if opts.ExpiresIn <= 0 {
		opts.ExpiresIn = DefaultExpiresIn
	}
	e := &Emulator{
		opts:     opts,
		scenario: sc,
		rules:    rs,
		codes:    map[string]*authCode{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		seen:     map[string]bool{},
		seq:      make([]int, len(sc.Tokens)),
		useq:     make([]int, len(sc.Tokens)),
	}
	e.stats = emptyStats()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/authorize", e.handleAuthorize)
	mux.HandleFunc("POST /v1/oauth/token", e.handleToken)
	mux.HandleFunc("POST /v1/messages", e.handleMessages)
	mux.HandleFunc("POST /v1/messages/count_tokens", e.handleCountTokens)
	mux.HandleFunc("GET /v1/models", e.handleModels)
	mux.HandleFunc("GET /v1/models/{id}", e.handleModel)
	mux.HandleFunc("GET /api/oauth/usage", e.handleUsage)
	mux.HandleFunc("GET /_emulator/stats", e.handleStats)
	mux.HandleFunc("POST /_emulator/reset", e.handleReset)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.apiError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.Method+" "+r.URL.Path, nil)
	})
	e.mux = mux
	return e
}

func emptyStats() Stats {
	return Stats{Requests: map[string]int64{}, Tokens: map[string]int64{}, UsageCalls: map[string]int64{}}
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.mu.Lock()
		e.stats.Requests[r.URL.Path]++
		e.mu.Unlock()
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	e.mux.ServeHTTP(rec, r)
	e.logf("%s %s %d%s", r.Method, r.URL.Path, rec.status, rec.note)
}

// Stats returns a copy of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Requests = maps.Clone(e.stats.Requests)
	s.Tokens = maps.Clone(e.stats.Tokens)
	s.UsageCalls = maps.Clone(e.stats.UsageCalls)
	return s
}

// Reset zeroes the counters and rewinds every scenario outcome sequence.
// Minted tokens and pending codes are kept.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = emptyStats()
	clear(e.seq)
	clear(e.useq)
}

func (e *Emulator) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

func (e *Emulator) handleReset(w http.ResponseWriter, _ *http.Request) {
	e.Reset()
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// Fingerprint is the first 12 hex chars of sha256(tok), the key of Stats.Tokens.
func Fingerprint(tok string) string { return secret.Fingerprint(tok) }

func (e *Emulator) logf(format string, args ...any) {
	if e.opts.Log == nil {
		return
	}
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(e.opts.Log, format+"\n", args...)
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	note   string
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func noteToken(w http.ResponseWriter, tok string) {
	if s, ok := w.(*statusRecorder); ok {
		s.note = " key=" + secret.Mask(tok)
	}
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randString returns n random base62 chars from opts.Rand.
func (e *Emulator) randString(n int) string {
	b := make([]byte, n)
	e.randMu.Lock() // a deterministic Rand from a test need not be concurrency-safe
	_, err := io.ReadFull(e.opts.Rand, b)
	e.randMu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("emulator: random source failed: %v", err))
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (e *Emulator) requestID() string { return "req_011C" + e.randString(20) }
