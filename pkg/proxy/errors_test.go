package proxy_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// fullError is an error answer with its request id.
type fullError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeFull(t *testing.T, resp *http.Response) fullError {
	t.Helper()
	var e fullError
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	require.Equal(t, "error", e.Type)
	return e
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func gzipHeader() http.Header {
	h := keyHeader()
	h.Set("Content-Encoding", "gzip")
	return h
}

// Every error the proxy makes itself is in Anthropic's shape with a
// request-id header equal to the body's request_id (req_piauth_…); a
// body the API would refuse is 400 invalid_request_error, never a 502 that
// SDKs retry.
func TestProxyErrorsHaveRequestID(t *testing.T) {
	bomb := gzipped(t, bytes.Repeat([]byte("x"), 8<<20)) // 8 MiB of x in a few KB
	require.Less(t, len(bomb), 64<<10)
	tests := []struct {
		name    string
		path    string
		header  http.Header
		body    []byte
		status  int
		errType string
		message string
	}{
		{"invalid JSON", "/v1/messages", keyHeader(), []byte(`{"model": "claude-sonnet-5-5", `), 400, "invalid_request_error", "invalid Messages request body"},
		{"not an object", "/v1/messages", keyHeader(), []byte(`[1,2]`), 400, "invalid_request_error", "invalid Messages request body"},
		{"wrong field type", "/v1/messages", keyHeader(), []byte(`{"model":"claude-sonnet-5-5","max_tokens":5,"system":5,"messages":[]}`), 400, "invalid_request_error", "system"},
		{"wrong messages type", "/v1/messages/count_tokens", keyHeader(), []byte(`{"model":"claude-sonnet-5-5","messages":"hi"}`), 400, "invalid_request_error", "messages"},
		{"gzip bomb", "/v1/messages", gzipHeader(), bomb, 413, "request_too_large", "maximum allowed number of bytes (1048576)"},
		{"not gzip", "/v1/messages", gzipHeader(), []byte(`{"model":"x"}`), 400, "invalid_request_error", "not valid gzip"},
		{"truncated gzip", "/v1/messages", gzipHeader(), gzipped(t, messagesBody(t, false, nil))[:40], 400, "invalid_request_error", "not valid gzip"},
		{"unknown encoding", "/v1/messages", func() http.Header { h := keyHeader(); h.Set("Content-Encoding", "br"); return h }(), []byte(`{}`), 415, "invalid_request_error", "content-encoding br"},
		{"no key", "/v1/messages", http.Header{}, messagesBody(t, false, nil), 401, "authentication_error", "x-api-key"},
		{"unknown route", "/v1/complete", keyHeader(), nil, 404, "not_found_error", "/v1/complete"},
		{"too large", "/v1/messages", keyHeader(), messagesBody(t, false, func(m map[string]any) { m["system"] = strings.Repeat("x", 2<<20) }), 413, "request_too_large", ""},
	}
	e := newEnv(t, emulator.Options{}, fakeToken("errors"), proxy.Options{ClientKey: clientKey(), MaxBodyBytes: 1 << 20})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, e.proxy.URL, tt.path, tt.header, tt.body)
			require.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			got := decodeFull(t, resp)
			assert.Equal(t, tt.errType, got.Error.Type)
			assert.Contains(t, got.Error.Message, tt.message)
			assert.True(t, strings.HasPrefix(got.RequestID, proxy.RequestIDPrefix), got.RequestID)
			assert.Greater(t, len(got.RequestID), len(proxy.RequestIDPrefix)+16)
			assert.Equal(t, got.RequestID, resp.Header.Get("Request-Id"))
		})
	}
	assert.Zero(t, e.emu.Stats().Requests["/v1/messages"], "none went upstream")
}

// Ids differ per answer.
func TestRequestIDsDiffer(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("ids"), proxy.Options{ClientKey: clientKey()})
	a := post(t, e.proxy.URL, "/v1/messages", http.Header{}, nil).Header.Get("Request-Id")
	b := post(t, e.proxy.URL, "/v1/messages", http.Header{}, nil).Header.Get("Request-Id")
	assert.NotEqual(t, a, b)
}

// A gzip body (what Claude Code sends over ~4 KB) is decoded before the
// shaping and goes upstream as plain JSON with the identity prepended.
func TestGzipBody(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("gzip"), proxy.Options{ClientKey: clientKey()})
	plain := messagesBody(t, true, func(m map[string]any) { m["system"] = strings.Repeat("Be terse. ", 1000) })
	for _, enc := range []string{"gzip", "x-gzip", "GZIP"} {
		t.Run(enc, func(t *testing.T) {
			h := keyHeader()
			h.Set("Content-Encoding", enc)
			resp := post(t, e.proxy.URL, "/v1/messages?beta=true", h, gzipped(t, plain))
			require.Equal(t, 200, resp.StatusCode)
			msg, err := stream.ReadMessage(resp.Body, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, "end_turn", msg.StopReason)
			sent := e.seen.last()
			require.True(t, json.Valid(sent), "upstream got JSON, not gzip")
			assert.Contains(t, string(sent), emulator.IdentityText)
			assert.Contains(t, string(sent), "Be terse. Be terse.")
		})
	}
}

// An upstream error body reaches the client byte for byte (with its own
// request_id), with its status and request-id header.
func TestUpstreamErrorVerbatim(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("extrausage"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	require.Equal(t, 400, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var got fullError
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Contains(t, got.Error.Message, "Third-party apps")
	assert.True(t, strings.HasPrefix(got.RequestID, "req_"), got.RequestID)
	assert.False(t, strings.HasPrefix(got.RequestID, proxy.RequestIDPrefix), "upstream's own id")
	assert.Equal(t, got.RequestID, resp.Header.Get("Request-Id"))
	// The emulator's own encoding of it, byte for byte.
	want, err := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": got.Error.Type, "message": got.Error.Message}, "request_id": got.RequestID})
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(body))
	assert.Equal(t, string(want)+"\n", string(body), "verbatim: the emulator's bytes")
}

// Every key rate-limited: the 429 carries the rate-limit headers the
// upstream sent last for the key that frees first, and a retry-after cut
// to MaxRetryAfter (the emulator asked 600 s).
func TestAllLimitedHeadersAndCap(t *testing.T) {
	for _, tt := range []struct {
		name  string
		max   time.Duration
		retry string
	}{
		{"default cap", 0, "60"},
		{"cap 5s", 5 * time.Second, "5"},
		{"cap above the wait", time.Hour, "600"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newPoolEnv(t, poolOptions{proxy: proxy.Options{MaxRetryAfter: tt.max}}, fakeToken("ratelimited-1"), fakeToken("ratelimited-2"))
			resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
			require.Equal(t, 429, resp.StatusCode)
			assert.Equal(t, tt.retry, resp.Header.Get("Retry-After"))
			assert.Equal(t, "rejected", resp.Header.Get("Anthropic-Ratelimit-Unified-Status"))
			assert.Equal(t, "five_hour", resp.Header.Get("Anthropic-Ratelimit-Unified-Representative-Claim"))
			assert.NotEmpty(t, resp.Header.Get("Anthropic-Ratelimit-Unified-5h-Reset"))
			got := decodeFull(t, resp)
			assert.Equal(t, "rate_limit_error", got.Error.Type)
			assert.True(t, strings.HasPrefix(got.RequestID, proxy.RequestIDPrefix))

			// Again, with every key known to be cooling: no upstream call,
			// the remembered headers still.
			before := e.emu.Stats().Requests["/v1/messages"]
			resp = post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
			require.Equal(t, 429, resp.StatusCode)
			assert.Equal(t, before, e.emu.Stats().Requests["/v1/messages"])
			assert.Equal(t, "rejected", resp.Header.Get("Anthropic-Ratelimit-Unified-Status"))
			assert.Equal(t, tt.retry, resp.Header.Get("Retry-After"))
		})
	}
}

// A 429 passed on from upstream (the login: no pool to rotate over) gets its
// retry-after cut to MaxRetryAfter too; the body stays verbatim.
func TestUpstreamRetryAfterCapped(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("ratelimited-login"), proxy.Options{ClientKey: clientKey(), MaxRetryAfter: 30 * time.Second})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	require.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "30", resp.Header.Get("Retry-After"))
	assert.Equal(t, "rejected", resp.Header.Get("Anthropic-Ratelimit-Unified-Status"))
	got := decodeFull(t, resp)
	assert.False(t, strings.HasPrefix(got.RequestID, proxy.RequestIDPrefix), "upstream's answer")
}
