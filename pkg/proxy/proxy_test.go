package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

func TestAccessControl(t *testing.T) {
	base := http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
	with := func(k, v string) http.Header {
		h := base.Clone()
		h.Set(k, v)
		return h
	}
	tests := []struct {
		name      string
		clientKey string
		accept    func(string) bool
		headers   http.Header
		status    int
		message   string
	}{
		{name: "missing key", clientKey: clientKey(), headers: base, status: 401, message: "x-api-key header is required"},
		{name: "wrong x-api-key", clientKey: clientKey(), headers: with("X-Api-Key", clientKey()+"x"), status: 401, message: "not the proxy key"},
		{name: "wrong bearer", clientKey: clientKey(), headers: with("Authorization", "Bearer nope"), status: 401, message: "not the proxy key"},
		{name: "key in the wrong scheme", clientKey: clientKey(), headers: with("Authorization", "Basic "+clientKey()), status: 401, message: "x-api-key header is required"},
		{name: "right x-api-key", clientKey: clientKey(), headers: with("X-Api-Key", clientKey()), status: 200},
		{name: "right bearer", clientKey: clientKey(), headers: with("Authorization", "Bearer "+clientKey()), status: 200},
		{name: "key accepted by AcceptKey", clientKey: clientKey(), accept: func(k string) bool { return k == "users-own-token" },
			headers: with("Authorization", "Bearer users-own-token"), status: 200},
		{name: "key refused by AcceptKey", clientKey: clientKey(), accept: func(k string) bool { return k == "users-own-token" },
			headers: with("Authorization", "Bearer someone-else"), status: 401, message: "not the proxy key"},
		{name: "no auth, no key", headers: base, status: 200},
		// The client's own Anthropic credential is dropped: the emulator
		// refuses a request carrying both x-api-key and a Bearer token.
		{name: "no auth, client credential dropped", headers: with("X-Api-Key", "sk-ant-"+"api03-client-own-key"), status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, emulator.Options{}, fakeToken("access"), proxy.Options{ClientKey: tt.clientKey, AcceptKey: tt.accept})
			resp := post(t, e.proxy.URL, "/v1/messages", tt.headers, messagesBody(t, false, nil))
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status != 200 {
				apiErr := decodeError(t, resp)
				assert.Equal(t, "authentication_error", apiErr.Error.Type)
				assert.Contains(t, apiErr.Error.Message, tt.message)
				assert.Zero(t, e.emu.Stats().Requests["/v1/messages"], "refused requests never go upstream")
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		errType      string
	}{
		{http.MethodPost, "/v1/complete", 404, "not_found_error"},
		{http.MethodGet, "/api/unknown", 404, "not_found_error"},
		{http.MethodPost, "/v1/messages/batches", 404, "not_found_error"},
		{http.MethodGet, "/v1/messages", 405, "invalid_request_error"},
		{http.MethodPut, "/v1/messages/count_tokens", 405, "invalid_request_error"},
	}
	e := newEnv(t, emulator.Options{}, fakeToken("routes"), proxy.Options{ClientKey: clientKey()})
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, e.proxy.URL+tt.path, strings.NewReader("{}"))
			require.NoError(t, err)
			req.Header = keyHeader()
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.errType, decodeError(t, resp).Error.Type)
			if tt.status == 405 {
				assert.Equal(t, "POST", resp.Header.Get("Allow"))
			}
		})
	}
	assert.Empty(t, e.emu.Stats().Requests, "nothing went upstream")
}

// The client's system prompt lacks the identity line: the emulator refuses
// it directly and accepts it through the proxy, which prepended the line.
func TestIdentityPrepended(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("identity"), proxy.Options{ClientKey: clientKey()})
	body := messagesBody(t, false, nil)

	direct := post(t, e.upstream.URL, "/v1/messages", http.Header{
		"Authorization": {"Bearer " + fakeToken("identity")}, "Anthropic-Version": {"2023-06-01"},
		"Anthropic-Beta": {"oauth-2025-04-20"}, "Content-Type": {"application/json"},
	}, body)
	require.Equal(t, 400, direct.StatusCode)

	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), body)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(raw))

	var sent struct {
		System []struct{ Text string } `json:"system"`
	}
	require.NoError(t, json.Unmarshal(e.seen.last(), &sent))
	require.Len(t, sent.System, 2)
	assert.Equal(t, stream.IdentityText, sent.System[0].Text)
	assert.Equal(t, "Be terse.", sent.System[1].Text)
}

func TestToolNamesMappedBothWays(t *testing.T) {
	sc := &emulator.Scenario{Reply: emulator.Reply{
		NoText:    true,
		ToolCalls: []emulator.ToolCall{{Name: "read_file", Input: json.RawMessage(`{"path":"a.go"}`)}},
	}}
	for _, streamed := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "stream"}[streamed], func(t *testing.T) {
			e := newEnv(t, emulator.Options{Scenario: sc}, fakeToken("tools"), proxy.Options{ClientKey: clientKey()})
			resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, streamed, withTool("read_file")))
			require.Equal(t, 200, resp.StatusCode)

			var sent struct {
				Tools []struct{ Name string } `json:"tools"`
			}
			require.NoError(t, json.Unmarshal(e.seen.last(), &sent))
			require.Len(t, sent.Tools, 1)
			assert.Equal(t, "mcp__piauth__read_file", sent.Tools[0].Name, "name the emulator accepted")

			var msg *stream.Message
			if streamed {
				var err error
				msg, err = stream.ReadMessage(resp.Body, nil, nil) // no mapping on the client side
				require.NoError(t, err)
			} else {
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&msg))
			}
			require.Len(t, msg.Content, 1)
			assert.Equal(t, "tool_use", msg.Content[0].Type)
			assert.Equal(t, "read_file", msg.Content[0].Name)
			assert.JSONEq(t, `{"path":"a.go"}`, string(msg.Content[0].Input))
			assert.Equal(t, "tool_use", msg.StopReason)
		})
	}
}

func TestCountTokensForwarded(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("count"), proxy.Options{ClientKey: clientKey()})
	body := messagesBody(t, false, func(m map[string]any) { delete(m, "max_tokens"); withTool("read_file")(m) })
	resp := post(t, e.proxy.URL, "/v1/messages/count_tokens", keyHeader(), body)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(raw))
	var out struct {
		InputTokens int64 `json:"input_tokens"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	assert.Positive(t, out.InputTokens)
	assert.Equal(t, int64(1), e.emu.Stats().Requests["/v1/messages/count_tokens"])
	assert.NotEmpty(t, resp.Header.Get("Request-Id"))

	e.proxy.Close() // waits for the handler, so its log line is written
	assert.Contains(t, e.log.String(), `"/v1/messages/count_tokens" 200`)
	assert.Contains(t, e.log.String(), "in="+jsonInt(out.InputTokens))
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestUpstreamErrorsPassThrough(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		status  int
		errType string
		headers []string
	}{
		{name: "rate limited", token: fakeToken("ratelimited"), status: 429, errType: "rate_limit_error",
			headers: []string{"Retry-After", "Request-Id", "X-Should-Retry", "Anthropic-Ratelimit-Unified-Status", "Anthropic-Ratelimit-Unified-5h-Reset"}},
		{name: "overloaded", token: fakeToken("overloaded"), status: 529, errType: "overloaded_error", headers: []string{"Request-Id"}},
		{name: "invalid", token: fakeToken("invalid"), status: 401, errType: "authentication_error", headers: []string{"Request-Id"}},
		{name: "bad request", token: fakeToken("fine"), status: 400, errType: "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, emulator.Options{}, tt.token, proxy.Options{ClientKey: clientKey()})
			body := messagesBody(t, true, nil)
			if tt.status == 400 {
				body = messagesBody(t, true, func(m map[string]any) { delete(m, "max_tokens") })
			}
			resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), body)
			require.Equal(t, tt.status, resp.StatusCode)
			for _, h := range tt.headers {
				assert.NotEmpty(t, resp.Header.Get(h), h)
			}
			assert.Equal(t, tt.errType, decodeError(t, resp).Error.Type)
		})
	}
}

func TestMidstreamErrorForwarded(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("midstream"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)
	events := readEvents(t, resp.Body)
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	assert.Equal(t, "error", last.Name)
	assert.Contains(t, last.Data, "overloaded_error")
	e.proxy.Close()
	assert.Contains(t, e.log.String(), "error=overloaded_error")
}

func TestTransportErrors(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	t.Run("not logged in", func(t *testing.T) {
		store, err := keystore.Open(keystore.Options{Dir: t.TempDir(), Mode: keystore.ModeOff})
		require.NoError(t, err)
		ref := &pkce.Refresher{Store: store}
		client := &http.Client{Transport: &stream.TokenTransport{Token: func(ctx context.Context) (string, error) {
			c, err := ref.AuthToken(ctx, false)
			if err != nil {
				return "", err
			}
			return c.Token(), nil
		}}}
		e := newEnv(t, emulator.Options{}, "", proxy.Options{Client: client, ClientKey: clientKey()})
		resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
		require.Equal(t, 401, resp.StatusCode)
		apiErr := decodeError(t, resp)
		assert.Equal(t, "authentication_error", apiErr.Error.Type)
		assert.Contains(t, apiErr.Error.Message, "piauth login")
	})
	t.Run("upstream unreachable", func(t *testing.T) {
		e := newEnv(t, emulator.Options{}, fakeToken("gone"), proxy.Options{ClientKey: clientKey(), Now: func() time.Time { return now }})
		e.upstream.Close()
		resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
		require.Equal(t, 502, resp.StatusCode)
		assert.Equal(t, "api_error", decodeError(t, resp).Error.Type)
	})
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("large"), proxy.Options{ClientKey: clientKey(), MaxBodyBytes: 1 << 10})
	body := messagesBody(t, false, func(m map[string]any) { m["system"] = strings.Repeat("x", 2<<10) })
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), body)
	require.Equal(t, 413, resp.StatusCode)
	assert.Equal(t, "request_too_large", decodeError(t, resp).Error.Type)
	assert.Zero(t, e.emu.Stats().Requests["/v1/messages"])
}

// The log names the request, the masked upstream key, the status and the
// tokens, and never a whole token or the client's key.
func TestLogHasNoSecrets(t *testing.T) {
	tok := fakeToken("logcheck-0001")
	for _, jsonLog := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "json"}[jsonLog], func(t *testing.T) {
			e := newEnv(t, emulator.Options{}, tok, proxy.Options{ClientKey: clientKey(), JSONLog: jsonLog})
			for _, streamed := range []bool{false, true} {
				resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, streamed, nil))
				require.Equal(t, 200, resp.StatusCode)
				_, _ = io.Copy(io.Discard, resp.Body)
			}
			h := keyHeader()
			h.Set("X-Api-Key", "wrong-"+clientKey())
			require.Equal(t, 401, post(t, e.proxy.URL, "/v1/messages", h, nil).StatusCode)
			e.proxy.Close()

			log := e.log.String()
			assert.NotContains(t, log, tok)
			assert.NotContains(t, log, clientKey())
			lines := strings.Split(strings.TrimSpace(log), "\n")
			require.Len(t, lines, 3, log)
			if !jsonLog {
				assert.Contains(t, lines[0], `POST "/v1/messages" 200`)
				assert.Contains(t, lines[0], "key="+keystore.Mask(tok))
				assert.Contains(t, lines[1], " stream in=25 ")
				assert.Contains(t, lines[2], "401")
				return
			}
			for i, line := range lines {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
				for _, k := range []string{"time", "method", "path", "status", "latency_ms", "stream", "input_tokens", "output_tokens"} {
					assert.Contains(t, rec, k, "line %d", i)
				}
				if i < 2 {
					assert.Equal(t, keystore.Mask(tok), rec["key"])
					assert.EqualValues(t, 25, rec["input_tokens"])
					assert.Positive(t, rec["output_tokens"])
				}
			}
			assert.Equal(t, true, mustJSON(t, lines[1])["stream"])
			assert.Equal(t, "authentication_error", mustJSON(t, lines[2])["error"])
		})
	}
}

func mustJSON(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &m))
	return m
}
