package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// Test credentials are built at runtime and stay short: they must never
// look like real tokens.
func fakeToken(name string) string { return "sk-ant-" + "oat01-" + name + "-proxytest" }

// clientKey is the proxy key the tests' clients present.
func clientKey() string { return "piauth-proxy-" + "test-client-key" }

// zeroRand makes the emulator's ids deterministic.
type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// env is an emulator upstream with a proxy in front of it.
type env struct {
	emu      *emulator.Emulator
	upstream *httptest.Server
	proxy    *httptest.Server
	log      *testenv.Buffer
	seen     *seenBodies
}

// seenBodies records the request bodies that reached the emulator.
type seenBodies struct {
	mu     sync.Mutex
	bodies [][]byte
	// finished receives once per request when the emulator's handler
	// returned (with a gated stream: when its context was cancelled).
	finished chan struct{}
}

func (s *seenBodies) last() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bodies) == 0 {
		return nil
	}
	return s.bodies[len(s.bodies)-1]
}

// startUpstream serves emu, keeping a copy of every request body.
func startUpstream(t testing.TB, emu *emulator.Emulator) (*httptest.Server, *seenBodies) {
	t.Helper()
	seen := &seenBodies{finished: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen.mu.Lock()
		seen.bodies = append(seen.bodies, body)
		seen.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		emu.ServeHTTP(w, r)
		select {
		case seen.finished <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

// tokenClient is a credentialed client for upstream: a single token with
// pkg/stream's OAuth shaping.
func tokenClient(upstream *httptest.Server, tok string) *http.Client {
	return &http.Client{Transport: &stream.TokenTransport{
		Base:  upstream.Client().Transport,
		Token: func(context.Context) (string, error) { return tok, nil },
	}}
}

// newEnv starts an emulator with emuOpts and a proxy whose client uses tok.
// opts.Client, Upstream and Log are filled in when unset.
func newEnv(t testing.TB, emuOpts emulator.Options, tok string, opts proxy.Options) *env {
	t.Helper()
	emu := emulator.New(emuOpts)
	up, seen := startUpstream(t, emu)
	if opts.Client == nil {
		opts.Client = tokenClient(up, tok)
	}
	if opts.Upstream == "" {
		opts.Upstream = up.URL
	}
	log := &testenv.Buffer{}
	if opts.Log == nil {
		opts.Log = log
	}
	px := httptest.NewServer(proxy.New(opts))
	t.Cleanup(px.Close)
	return &env{emu: emu, upstream: up, proxy: px, log: log, seen: seen}
}

// messagesBody is a plain client request: no identity block, as an SDK
// user would send it.
func messagesBody(t testing.TB, streamed bool, mod func(map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"model":      "claude-sonnet-5-5",
		"max_tokens": 256,
		"system":     "Be terse.",
		"messages":   []any{map[string]any{"role": "user", "content": "hi"}},
	}
	if streamed {
		m["stream"] = true
	}
	if mod != nil {
		mod(m)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// withTool adds a client tool named name.
func withTool(name string) func(map[string]any) {
	return func(m map[string]any) {
		m["tools"] = []any{map[string]any{"name": name, "description": "a tool", "input_schema": map[string]any{"type": "object"}}}
	}
}

// post sends body to the proxy at path with the given headers.
func post(t testing.TB, base, path string, h http.Header, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// keyHeader is what an SDK sends with the proxy key.
func keyHeader() http.Header {
	return http.Header{"X-Api-Key": {clientKey()}, "Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
}

// apiError decodes an error answer in Anthropic's shape.
type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeError(t testing.TB, resp *http.Response) apiError {
	t.Helper()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var e apiError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, "error", e.Type)
	return e
}

// event is a decoded SSE event with its data copied.
type event struct {
	Name, Data string
}

func readEvents(t testing.TB, r io.Reader) []event {
	t.Helper()
	var out []event
	dec := stream.NewDecoder(r)
	for dec.Next() {
		ev := dec.Event()
		out = append(out, event{ev.Name, string(ev.Data)})
	}
	require.NoError(t, dec.Err())
	return out
}

// gate is an emulator Sleep that lets the first `free` waits pass and holds
// the later ones until open is closed.
type gate struct {
	mu    sync.Mutex
	calls int
	free  int
	open  chan struct{}
}

func newGate(free int) *gate {
	return &gate{free: free, open: make(chan struct{})}
}

func (g *gate) Sleep(ctx context.Context, _ time.Duration) error {
	g.mu.Lock()
	g.calls++
	pass := g.calls <= g.free
	g.mu.Unlock()
	if pass {
		return nil
	}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slowReply makes every stream event wait on the emulator's Sleep.
func slowReply() *emulator.Scenario {
	return &emulator.Scenario{Reply: emulator.Reply{EventDelayMS: 1}}
}

// httptestServer serves h until the test ends and returns its URL.
func httptestServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
