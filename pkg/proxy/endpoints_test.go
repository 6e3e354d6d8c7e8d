package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// do sends a request with the given method, headers and body to the proxy.
func do(t *testing.T, method, url string, h http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// modelsEnv is a proxy whose model list comes from the emulator's
// /v1/models with the proxy's own token.
func modelsEnv(t *testing.T, emuOpts emulator.Options) *env {
	t.Helper()
	tok := fakeToken("models")
	var e *env
	e = newEnv(t, emuOpts, tok, proxy.Options{ClientKey: clientKey(), ListModels: func(ctx context.Context) ([]stream.APIModel, error) {
		return stream.Builtin().ListModels(ctx, e.upstream.Client(), e.upstream.URL, tok)
	}})
	return e
}

// The calls Claude Code makes besides Messages are answered by the proxy
// itself: warm-ups and telemetry never reach the upstream, and need no key.
func TestClaudeCodeEndpoints(t *testing.T) {
	tests := []struct {
		method, path string
		header       http.Header
		body         string
		status       int
		wantBody     string
	}{
		{method: http.MethodHead, path: "/", status: 200},
		{method: http.MethodGet, path: "/", status: 200, wantBody: "piauth proxy\n"},
		{method: http.MethodHead, path: "/api/hello", status: 200},
		{method: http.MethodGet, path: "/api/hello", status: 200, wantBody: "piauth proxy\n"},
		{method: http.MethodPost, path: "/api/event_logging/batch", body: `{"events":[{"event_type":"ClaudeCodeInternalEvent"}]}`,
			status: 200, wantBody: "{}"},
		{method: http.MethodPost, path: "/api/event_logging/batch", header: keyHeader(), body: `{"events":[]}`, status: 200, wantBody: "{}"},
		{method: http.MethodDelete, path: "/api/hello", status: 405},
		{method: http.MethodGet, path: "/api/event_logging/batch", status: 405},
	}
	e := newEnv(t, emulator.Options{}, fakeToken("endpoints"), proxy.Options{ClientKey: clientKey()})
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp := do(t, tt.method, e.proxy.URL+tt.path, tt.header, tt.body)
			require.Equal(t, tt.status, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			if tt.status != 200 {
				assert.Equal(t, "invalid_request_error", mustJSON(t, string(body))["error"].(map[string]any)["type"])
				return
			}
			assert.Equal(t, tt.wantBody, string(body))
		})
	}
	assert.Empty(t, e.emu.Stats().Requests, "nothing went upstream")
}

// GET /v1/models answers the upstream's list (asked with the proxy's
// credential) merged with the built-in table, in the Models API shape; a
// refusing upstream leaves the built-in table alone. The proxy key is asked.
func TestModelsEndpoint(t *testing.T) {
	type page struct {
		Data []struct {
			Type, ID, DisplayName string
			CreatedAt             string `json:"created_at"`
			MaxInputTokens        int    `json:"max_input_tokens"`
		} `json:"data"`
		HasMore bool   `json:"has_more"`
		FirstID string `json:"first_id"`
		LastID  string `json:"last_id"`
	}
	get := func(t *testing.T, e *env, path string, h http.Header) (*http.Response, page) {
		resp := do(t, http.MethodGet, e.proxy.URL+path, h, "")
		var pg page
		if resp.StatusCode == 200 && path == "/v1/models?limit=1000" {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&pg))
		}
		return resp, pg
	}
	builtin := stream.Builtin().Models()

	t.Run("upstream lists", func(t *testing.T) {
		e := modelsEnv(t, emulator.Options{})
		resp, pg := get(t, e, "/v1/models?limit=1000", keyHeader())
		require.Equal(t, 200, resp.StatusCode)
		require.NotEmpty(t, pg.Data)
		assert.False(t, pg.HasMore)
		assert.Equal(t, pg.Data[0].ID, pg.FirstID)
		assert.Equal(t, pg.Data[len(pg.Data)-1].ID, pg.LastID)
		ids := map[string]string{}
		for _, m := range pg.Data {
			assert.Equal(t, "model", m.Type)
			ids[m.ID] = m.CreatedAt
		}
		assert.Equal(t, "2026-10-07T00:00:00Z", ids["claude-sonnet-5-5"], "the upstream's created_at is kept")
		assert.EqualValues(t, 1, e.emu.Stats().Requests["/v1/models"])

		resp, _ = get(t, e, "/v1/models?limit=1000", keyHeader())
		require.Equal(t, 200, resp.StatusCode)
		assert.EqualValues(t, 1, e.emu.Stats().Requests["/v1/models"], "the list is reused")
	})
	t.Run("upstream refuses OAuth", func(t *testing.T) {
		svc := emulator.DefaultService()
		svc.ModelsRejectOAuth = true
		e := modelsEnv(t, emulator.Options{Scenario: &emulator.Scenario{Service: svc}})
		resp, pg := get(t, e, "/v1/models?limit=1000", keyHeader())
		require.Equal(t, 200, resp.StatusCode)
		require.Len(t, pg.Data, len(builtin), "the built-in table")
		assert.Equal(t, builtin[0].ID, pg.Data[0].ID)
		assert.Equal(t, "1970-01-01T00:00:00Z", pg.Data[0].CreatedAt, "a valid time where the table has none")
	})
	t.Run("no ListModels", func(t *testing.T) {
		e := newEnv(t, emulator.Options{}, fakeToken("nolist"), proxy.Options{ClientKey: clientKey()})
		resp, pg := get(t, e, "/v1/models?limit=1000", keyHeader())
		require.Equal(t, 200, resp.StatusCode)
		assert.Len(t, pg.Data, len(builtin))
	})

	e := modelsEnv(t, emulator.Options{})
	tests := []struct {
		name, path string
		header     http.Header
		status     int
		id         string
	}{
		{"one model", "/v1/models/claude-sonnet-5-5", keyHeader(), 200, "claude-sonnet-5-5"},
		{"an alias", "/v1/models/sonnet", keyHeader(), 200, "claude-sonnet-5-5"},
		{"unknown", "/v1/models/claude-nope-1", keyHeader(), 404, ""},
		{"no key", "/v1/models", nil, 401, ""},
		{"no key, one model", "/v1/models/claude-sonnet-5-5", nil, 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, e, tt.path, tt.header)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status != 200 {
				assert.True(t, strings.HasPrefix(resp.Header.Get("Request-Id"), proxy.RequestIDPrefix))
				return
			}
			var m struct{ Type, ID string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
			assert.Equal(t, "model", m.Type)
			assert.Equal(t, tt.id, m.ID)
		})
	}
}

// Claude Code's POST /v1/messages?beta=true goes upstream with its query
// and is logged with it.
func TestMessagesQueryLogged(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("beta"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages?beta=true", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)
	_, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err)
	e.proxy.Close()
	assert.Contains(t, e.log.String(), `POST "/v1/messages?beta=true" 200`)
}

// ping events reach the client (Claude Code's idle watchdog counts on
// them); TestStreamFlushesEachEvent checks that every event is flushed.
func TestPingPassesThrough(t *testing.T) {
	sc := &emulator.Scenario{Reply: emulator.Reply{Deltas: 3}}
	e := newEnv(t, emulator.Options{Scenario: sc}, fakeToken("ping"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)
	names := []string{}
	for _, ev := range readEvents(t, resp.Body) {
		names = append(names, ev.Name)
	}
	assert.Contains(t, names, "ping")
}
