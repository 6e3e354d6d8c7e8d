package proxy_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// send posts a Messages request to base with the given Host (""= the URL's),
// method and extra headers.
func send(t *testing.T, base, method, host string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+"/v1/messages", bytes.NewReader(messagesBody(t, false, nil)))
	require.NoError(t, err)
	req.Header = keyHeader()
	for k, vs := range h {
		req.Header[k] = vs
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Only this machine's names are served (DNS rebinding), and browser pages
// only from an allowed Origin, with CORS headers for it.
func TestHostAndOriginGuard(t *testing.T) {
	const app = "http://localhost:3000"
	tests := []struct {
		name    string
		method  string
		host    string
		headers http.Header
		status  int
		errType string
		check   func(t *testing.T, resp *http.Response)
	}{
		{name: "127.0.0.1", status: 200},
		{name: "localhost with another port (ssh -L)", host: "localhost:9999", status: 200},
		{name: "LOCALHOST. without port", host: "LOCALHOST.", status: 200},
		{name: "[::1]", host: "[::1]:8787", status: 200},
		{name: "extra host from Options.Hosts", host: "devbox.lan:8787", status: 200},
		{name: "rebound DNS name", host: "evil.example:8787", status: 403, errType: "permission_error"},
		{name: "localhost as a subdomain", host: "localhost.evil.example", status: 403, errType: "permission_error"},
		{name: "another IP literal", host: "192.0.2.7:8787", status: 403, errType: "permission_error"},
		{name: "foreign web page", headers: http.Header{"Origin": {"https://evil.example"}}, status: 403, errType: "permission_error"},
		{name: "sandboxed page (Origin null)", headers: http.Header{"Origin": {"null"}}, status: 403, errType: "permission_error"},
		{name: "allowed origin gets CORS headers", headers: http.Header{"Origin": {app}}, status: 200,
			check: func(t *testing.T, resp *http.Response) {
				assert.Equal(t, app, resp.Header.Get("Access-Control-Allow-Origin"))
				assert.Contains(t, resp.Header.Values("Vary"), "Origin")
			}},
		{name: "allowed origin, preflight", method: http.MethodOptions,
			headers: http.Header{"Origin": {app}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Private-Network": {"true"}}, status: 204,
			check: func(t *testing.T, resp *http.Response) {
				assert.Equal(t, app, resp.Header.Get("Access-Control-Allow-Origin"))
				assert.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Private-Network"))
				assert.Equal(t, "POST", resp.Header.Get("Access-Control-Allow-Methods"))
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "x-api-key")
			}},
		{name: "foreign origin, preflight", method: http.MethodOptions,
			headers: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}, status: 403, errType: "permission_error",
			check: func(t *testing.T, resp *http.Response) {
				assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// --no-auth is where this matters most: no key stops a page.
			e := newEnv(t, emulator.Options{}, fakeToken("guard"), proxy.Options{
				Hosts: []string{"devbox.lan"}, AllowOrigins: []string{app + "/"},
			})
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			resp := send(t, e.proxy.URL, method, tt.host, tt.headers)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.errType != "" {
				assert.Equal(t, tt.errType, decodeError(t, resp).Error.Type)
				assert.Zero(t, e.emu.Stats().Requests["/v1/messages"], "refused requests never go upstream")
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}
}

// ServeListener serves the listen host; on a wildcard address any IP
// literal (this machine's addresses), never a name.
func TestServeListenerHosts(t *testing.T) {
	tests := []struct {
		listen string
		host   string
		status int
	}{
		{"127.0.0.1:0", "127.0.0.1", 200},
		{"0.0.0.0:0", "192.0.2.7:1", 200},
		{"0.0.0.0:0", "evil.example", 403},
	}
	for _, tt := range tests {
		t.Run(tt.listen+" "+tt.host, func(t *testing.T) {
			e := newEnv(t, emulator.Options{}, fakeToken("hosts"), proxy.Options{})
			base := serveOn(t, tt.listen, proxy.New(proxy.Options{Client: tokenClient(e.upstream, fakeToken("hosts")), Upstream: e.upstream.URL}))
			assert.Equal(t, tt.status, send(t, base, http.MethodPost, tt.host, nil).StatusCode)
		})
	}
}

// A proxy whose upstream leads back to itself answers 508 instead of
// recursing: the request it sends carries the hop header.
func TestLoopDetected(t *testing.T) {
	emu := emulator.New(emulator.Options{})
	up, _ := startUpstream(t, emu)
	var mu sync.Mutex
	var hops []string
	var px *proxy.Proxy
	self := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hops = append(hops, r.Header.Get(proxy.HopHeader))
		mu.Unlock()
		px.ServeHTTP(w, r)
	}))
	t.Cleanup(self.Close)
	log := &strings.Builder{}
	var logMu sync.Mutex
	px = proxy.New(proxy.Options{
		Client:   tokenClient(up, fakeToken("loop")),
		Upstream: self.URL, // PIAUTH_BASE_URL = the proxy itself
		Log:      writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return log.Write(p) }),
	})

	resp := post(t, self.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	require.Equal(t, http.StatusLoopDetected, resp.StatusCode)
	apiErr := decodeError(t, resp)
	assert.Equal(t, "api_error", apiErr.Error.Type)
	assert.Contains(t, apiErr.Error.Message, "request loop")
	assert.Equal(t, []string{"", "1"}, hops, "one hop, then refused")
	assert.Zero(t, emu.Stats().Requests["/v1/messages"])
	logMu.Lock()
	assert.Equal(t, 2, strings.Count(log.String(), " 508 "), log.String())
	logMu.Unlock()
}

// The hop header goes to any upstream but Anthropic's own API, where it
// would only mark the request as not Claude Code's.
func TestHopHeaderUpstream(t *testing.T) {
	tests := []struct {
		upstream string
		want     string
	}{
		{upstream: "http://gateway.test", want: "1"},
		{upstream: proxy.OfficialAPI, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.upstream, func(t *testing.T) {
			emu := emulator.New(emulator.Options{})
			up, _ := startUpstream(t, emu)
			var mu sync.Mutex
			var got []string
			// Whatever the upstream URL, the request is delivered to the
			// emulator (nothing leaves the machine).
			toEmu := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				got = append(got, r.Header.Get(proxy.HopHeader))
				mu.Unlock()
				r = r.Clone(r.Context())
				r.URL.Scheme, r.URL.Host, r.Host = "http", strings.TrimPrefix(up.URL, "http://"), ""
				return up.Client().Transport.RoundTrip(r)
			})
			client := &http.Client{Transport: &stream.TokenTransport{
				Base:  toEmu,
				Token: func(context.Context) (string, error) { return fakeToken("hop"), nil },
			}}
			px := httptestServer(t, proxy.New(proxy.Options{Client: client, Upstream: tt.upstream}))
			resp := post(t, px, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, []string{tt.want}, got)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// serveOn runs p.ServeListener on addr until the test ends and returns a
// base URL that reaches it.
func serveOn(t *testing.T, addr string, p *proxy.Proxy) string {
	t.Helper()
	ln, err := proxy.Listen(addr)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	port := ln.Addr().(*net.TCPAddr).Port
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// SelfLoop spots an upstream that is the proxy's own listener.
func TestSelfLoop(t *testing.T) {
	at := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	tests := []struct {
		name     string
		upstream string
		ln       net.Addr
		want     bool
	}{
		{"same loopback address", "http://127.0.0.1:8787", at("127.0.0.1", 8787), true},
		{"localhost", "http://localhost:8787/", at("127.0.0.1", 8787), true},
		{"wildcard listener, loopback upstream", "http://127.0.0.1:8787", at("0.0.0.0", 8787), true},
		{"default port", "http://127.0.0.1", at("127.0.0.1", 80), true},
		{"other port", "http://127.0.0.1:8788", at("127.0.0.1", 8787), false},
		{"other loopback address", "http://127.0.0.2:8787", at("127.0.0.1", 8787), false},
		{"https (the proxy serves http only)", "https://127.0.0.1:8787", at("127.0.0.1", 8787), false},
		{"Anthropic", proxy.OfficialAPI, at("127.0.0.1", 443), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, proxy.SelfLoop(tt.upstream, tt.ln))
		})
	}
}
