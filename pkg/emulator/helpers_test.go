package emulator

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

// fakeTok builds a short fake token at runtime.
func fakeTok(kind, name string) string { return "sk-ant-" + kind + "01-" + name + "-test" }

func start(t *testing.T, opts Options) (*Emulator, *httptest.Server) {
	t.Helper()
	e := New(opts)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// testModel is the default model of test requests: current, identity-gated
// and with a Claude Code version floor (2.1.280).
const testModel = "claude-sonnet-5-5"

// testUserAgent is the user-agent of a current Claude Code (above every floor).
const testUserAgent = "claude-cli/2.1.300 (external, cli)"

// body returns a valid OAuth-shaped Messages request body with modifications applied.
func body(mod func(m map[string]any)) string {
	m := map[string]any{
		"model":      testModel,
		"max_tokens": 4096,
		"messages":   []any{map[string]any{"role": "user", "content": "hi"}},
		"system": []any{
			map[string]any{"type": "text", "text": IdentityText, "cache_control": map[string]any{"type": "ephemeral"}},
			map[string]any{"type": "text", "text": "Be brief."},
		},
		"tools": []any{
			map[string]any{"name": "Read", "input_schema": map[string]any{"type": "object"}},
			map[string]any{"name": "mcp__piauth__get_weather", "input_schema": map[string]any{"type": "object"}},
		},
	}
	if mod != nil {
		mod(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// oauthHeaders are the headers a correct OAuth client sends.
func oauthHeaders(tok string) http.Header {
	return http.Header{
		"Authorization":     {"Bearer " + tok},
		"Anthropic-Version": {"2023-06-01"},
		"Anthropic-Beta":    {"claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"},
		"Content-Type":      {"application/json"},
		"User-Agent":        {testUserAgent},
		"X-App":             {"cli"},
	}
}

func apiKeyHeaders(tok string) http.Header {
	return http.Header{"X-Api-Key": {tok}, "Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
}

func post(t *testing.T, srv *httptest.Server, path string, h http.Header, b string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(b))
	require.NoError(t, err)
	req.Header = h
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type apiErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"error_code"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeAPIErr(t *testing.T, resp *http.Response) apiErr {
	t.Helper()
	var e apiErr
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	return e
}

type event struct {
	name string
	data string
}

// readEvents parses an SSE body into events (minimal, for shape checks).
func readEvents(t *testing.T, r io.Reader) []event {
	t.Helper()
	br := bufio.NewReaderSize(r, 1<<20)
	var evs []event
	var cur event
	for {
		line, err := br.ReadString('\n')
		if line == "\n" {
			evs = append(evs, cur)
			cur = event{}
		} else if v, ok := strings.CutPrefix(line, "event: "); ok {
			cur.name = strings.TrimSuffix(v, "\n")
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			cur.data = strings.TrimSuffix(v, "\n")
		}
		if err == io.EOF {
			return evs
		}
		require.NoError(t, err)
	}
}

func names(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name
	}
	return out
}

// login runs authorize + exchange and returns the token response.
func login(t *testing.T, srv *httptest.Server) tokenResp {
	t.Helper()
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	redirect := "http://localhost:53692/callback"
	code := authorize(t, srv, authQuery(nil))
	resp := post(t, srv, "/v1/oauth/token", http.Header{"Content-Type": {"application/json"}}, mustJSON(map[string]string{
		"grant_type": "authorization_code", "client_id": DefaultClientID, "code": code,
		"state": "st4te", "redirect_uri": redirect, "code_verifier": verifier,
	}))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tr tokenResp
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tr))
	return tr
}

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	Account      struct {
		UUID  string `json:"uuid"`
		Email string `json:"email_address"`
	} `json:"account"`
	Error string `json:"error"`
}

func authQuery(mod func(url.Values)) url.Values {
	q := url.Values{
		"code":                  {"true"},
		"client_id":             {DefaultClientID},
		"response_type":         {"code"},
		"redirect_uri":          {"http://localhost:53692/callback"},
		"scope":                 {"org:create_api_key user:profile user:inference"},
		"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
		"code_challenge_method": {"S256"},
		"state":                 {"st4te"},
	}
	if mod != nil {
		mod(q)
	}
	return q
}

// authorize follows the authorize URL and returns the code from the redirect.
func authorize(t *testing.T, srv *httptest.Server, q url.Values) string {
	t.Helper()
	resp, err := noRedirect().Get(srv.URL + "/oauth/authorize?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, q.Get("state"), loc.Query().Get("state"))
	return loc.Query().Get("code")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// get sends a GET request with headers h.
func get(t *testing.T, srv *httptest.Server, path string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	req.Header = h
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// withHeader returns a copy of h with k set to v ("" deletes k).
func withHeader(h http.Header, k, v string) http.Header {
	h = h.Clone()
	if v == "" {
		h.Del(k)
	} else {
		h.Set(k, v)
	}
	return h
}

// tools builds a tools[] list of custom tools with the given names.
func tools(names ...string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = map[string]any{"name": n, "input_schema": map[string]any{"type": "object"}}
	}
	return out
}

// wantErr is the expected error answer of a request.
type wantErr struct {
	status int
	typ    string
	msg    string // exact message
	code   string // error_code
}

// assertErr checks resp against w exactly.
func assertErr(t *testing.T, resp *http.Response, w wantErr) apiErr {
	t.Helper()
	require.Equal(t, w.status, resp.StatusCode)
	e := decodeAPIErr(t, resp)
	assert.Equal(t, "error", e.Type)
	assert.Equal(t, w.typ, e.Error.Type)
	assert.Equal(t, w.msg, e.Error.Message)
	assert.Equal(t, w.code, e.Error.Code)
	assert.Regexp(t, `^req_\w+$`, e.RequestID)
	return e
}

// limitHeaders lists the rate-limit headers present in h.
func limitHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		if l := strings.ToLower(k); l == "retry-after" || strings.HasPrefix(l, "anthropic-ratelimit-") {
			out = append(out, l)
		}
	}
	return out
}
