package proxy_test

import (
	"bytes"
	"encoding/json"
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

// A request real Claude Code sends (its billing block, its identity, its
// own tools, its cache markers) goes up through the proxy with its system
// and tools byte for byte: only the credential and auth headers are ours.
func TestClaudeCodeRequestPassesUnchanged(t *testing.T) {
	body := []byte(`{"model":"claude-sonnet-5-5","max_tokens":512,"stream":true,` +
		`"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.300; cch=abc"},` +
		`{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}},` +
		`{"type":"text","text":"Project rules.","cache_control":{"type":"ephemeral"}}],` +
		`"tools":[{"name":"Read","description":"read","input_schema":{"type":"object"}},` +
		`{"name":"TaskList","description":"tasks","input_schema":{"type":"object"}},` +
		`{"name":"mcp__github__search","description":"s","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}`)
	e := newEnv(t, emulator.Options{}, fakeToken("cc"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages?beta=true", keyHeader(), body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, string(body), string(e.seen.last()), "byte for byte: no identity added, no tool renamed, no marker moved")
}

// A client already using 4 cache_control blocks arrives with 4: the identity
// block we prepend gives up its own marker (the service refuses a fifth).
func TestFourCacheControlBlocksStayFour(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("cache4"), proxy.Options{ClientKey: clientKey()})
	cc := map[string]any{"type": "ephemeral"}
	body := messagesBody(t, false, func(m map[string]any) {
		m["system"] = []any{map[string]any{"type": "text", "text": "Rules.", "cache_control": cc}}
		m["tools"] = []any{
			map[string]any{"name": "lookup", "input_schema": map[string]any{"type": "object"}, "cache_control": cc},
			map[string]any{"name": "fetch", "input_schema": map[string]any{"type": "object"}, "cache_control": cc},
		}
		m["messages"] = []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi", "cache_control": cc}}}}
	})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the service accepted it (it refuses more than 4)")
	sent := e.seen.last()
	assert.Equal(t, 4, bytes.Count(sent, []byte(`"cache_control"`)))
	var req struct {
		System []map[string]any `json:"system"`
	}
	require.NoError(t, json.Unmarshal(sent, &req))
	require.Len(t, req.System, 2)
	assert.Equal(t, emulator.IdentityText, req.System[0]["text"], "the identity is still first")
	assert.NotContains(t, req.System[0], "cache_control")
}

// Every key overloaded: the client is told 529 overloaded_error (what the
// service would say), not 429 "rate-limited".
func TestAllKeysOverloadedIs529(t *testing.T) {
	e, _ := rotatingEnv(t, time.Now, fakeToken("overloaded-1"), fakeToken("overloaded-2"))
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	assert.Equal(t, 529, resp.StatusCode)
	var body struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, "overloaded_error", body.Error.Type)
	assert.True(t, strings.Contains(body.Error.Message, "overloaded"), body.Error.Message)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
}
