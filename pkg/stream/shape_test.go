package stream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/secret"
	redact "github.com/piauth/piauth/internal/secret"
)

// Short fake credentials; real ones are far longer.
const (
	oauthTok = "sk-ant-oat01-fake-abcd1234"
	apiTok   = "sk-ant-api03-fake-wxyz9876"
)

var identityJSON = `{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}}`

func TestShape(t *testing.T) {
	tests := []struct {
		name  string
		token string
		in    string
		want  string
	}{
		{"api key untouched", apiTok,
			`{"model":"m","system":"be brief","tools":[{"name":"get weather"}],"x":1}`,
			`{"model":"m","system":"be brief","tools":[{"name":"get weather"}],"x":1}`},
		{"no system", oauthTok, `{"model":"m"}`, `{"model":"m","system":[` + identityJSON + `]}`},
		{"string system", oauthTok, `{"system":"be brief"}`,
			`{"system":[` + identityJSON + `,{"type":"text","text":"be brief"}]}`},
		{"array system", oauthTok, `{"system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]}`,
			`{"system":[` + identityJSON + `,{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]}`},
		{"identity not duplicated", oauthTok, `{"system":[` + identityJSON + `,{"type":"text","text":"b"}]}`,
			`{"system":[` + identityJSON + `,{"type":"text","text":"b"}]}`},
		{"identity string not duplicated", oauthTok, `{"system":"You are Claude Code, Anthropic's official CLI for Claude."}`,
			`{"system":[` + identityJSON + `]}`},
		{"tools renamed, claude code and mcp and server tools kept", oauthTok,
			`{"tools":[{"name":"get weather","input_schema":{"type":"object"},"extra":true},{"name":"Read"},{"name":"mcp__other__x"},{"type":"web_search_20250305","name":"web_search","max_uses":3},{"type":"custom","name":"calc"}],
			  "tool_choice":{"type":"tool","name":"get weather"},
			  "messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"u1","name":"get weather","input":{}},{"type":"tool_use","id":"u2","name":"Bash","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"u1","content":"ok"}]}],
			  "metadata":{"user_id":"u"}}`,
			`{"system":[` + identityJSON + `],
			  "tools":[{"name":"mcp__piauth__get_weather","input_schema":{"type":"object"},"extra":true},{"name":"Read"},{"name":"mcp__other__x"},{"type":"web_search_20250305","name":"web_search","max_uses":3},{"type":"custom","name":"mcp__piauth__calc"}],
			  "tool_choice":{"type":"tool","name":"mcp__piauth__get_weather"},
			  "messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"u1","name":"mcp__piauth__get_weather","input":{}},{"type":"tool_use","id":"u2","name":"Bash","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"u1","content":"ok"}]}],
			  "metadata":{"user_id":"u"}}`},
		{"tool_choice auto untouched", oauthTok, `{"tool_choice":{"type":"auto"}}`,
			`{"system":[` + identityJSON + `],"tool_choice":{"type":"auto"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Shape([]byte(tt.in), tt.token)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
			again, err := Shape(got, tt.token)
			require.NoError(t, err)
			assert.JSONEq(t, string(got), string(again), "shaping is idempotent")
		})
	}
}

func TestShapeRejectsBadBodies(t *testing.T) {
	for _, in := range []string{`nope`, `[]`, `null`, `{"system":42}`, `{"tools":{}}`, `{"messages":"x"}`} {
		_, err := Shape([]byte(in), oauthTok)
		assert.ErrorIs(t, err, ErrBadRequestBody, in)
	}
}

func TestToolNames(t *testing.T) {
	body := []byte(`{"tools":[{"name":"get weather"},{"name":"Read"},{"name":"a.b/c"},{"type":"web_search_20250305","name":"web_search"}]}`)
	m := ToolNamesFor(body)
	tests := []struct{ sent, want string }{
		{"mcp__piauth__get_weather", "get weather"},
		{"mcp__piauth__a_b_c", "a.b/c"},
		{"Read", "Read"},
		{"web_search", "web_search"},
		{"mcp__piauth__unknown", "unknown"},
		{"mcp__other__x", "mcp__other__x"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, m.Original(tt.sent), tt.sent)
	}
	var none *ToolNames
	assert.Equal(t, "x", none.Original("mcp__piauth__x"), "nil mapping")
	assert.Equal(t, "mcp__piauth__a_b_c", SentToolName("a.b/c"))
	assert.Equal(t, "mcp__piauth__ok-_9", SentToolName("ok-_9"))
}

func TestMapEventToolName(t *testing.T) {
	m := ToolNamesFor([]byte(`{"tools":[{"name":"get weather"}]}`))
	in := []byte(`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"mcp__piauth__get_weather","input":{}}}`)
	assert.JSONEq(t, `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t","name":"get weather","input":{}}}`,
		string(MapEventToolName(in, m)))
	plain := []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	assert.Equal(t, string(plain), string(MapEventToolName(plain, m)), "untouched")
	textMention := []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"mcp__piauth__x"}}`)
	assert.Equal(t, string(textMention), string(MapEventToolName(textMention, m)), "text blocks untouched")
	assert.Equal(t, "garbage mcp__piauth__", string(MapEventToolName([]byte("garbage mcp__piauth__"), m)))
}

func TestSetAuthHeaders(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		stream bool
		in     http.Header
		want   map[string]string
		absent []string
	}{
		{"oauth merges betas", oauthTok, true,
			http.Header{"X-Api-Key": {"client"}, "Anthropic-Beta": {"oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14", "context-1m-2025-08-07"}},
			map[string]string{
				"Authorization":     "Bearer " + oauthTok,
				"Anthropic-Beta":    "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,context-1m-2025-08-07",
				"User-Agent":        "claude-cli/2.1.280 (external, cli)",
				"X-App":             "cli",
				"Anthropic-Version": "2023-06-01",
				"Content-Type":      "application/json",
				"Accept":            "text/event-stream",
			}, []string{"X-Api-Key"}},
		{"api key", apiTok, false,
			http.Header{"Authorization": {"Bearer client"}, "Anthropic-Version": {"2024-01-01"}},
			map[string]string{"X-Api-Key": apiTok, "Anthropic-Version": "2024-01-01", "Content-Type": "application/json"},
			[]string{"Authorization", "Anthropic-Beta", "X-App", "Accept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			SetAuthHeaders(h, tt.token, tt.stream)
			for k, v := range tt.want {
				assert.Equal(t, []string{v}, h.Values(k), k)
			}
			for _, k := range tt.absent {
				assert.Empty(t, h.Values(k), k)
			}
		})
	}
}

func TestTokenTransport(t *testing.T) {
	type seen struct {
		path string
		h    http.Header
		body string
	}
	got := make(chan seen, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.Header.Clone(), string(b)}
		w.Header().Set("Content-Type", "text/event-stream")
	}))
	defer srv.Close()

	body, err := Params{Model: "claude-sonnet-4-5", MaxTokens: 2048, Thinking: 1024, System: "sys",
		Messages: []json.RawMessage{UserMessage("hi")}, Tools: json.RawMessage(`[{"name":"calc"}]`), Stream: true}.Body()
	require.NoError(t, err)
	for _, tok := range []string{oauthTok, apiTok} {
		t.Run(string(secret.KindOf(tok)), func(t *testing.T) {
			req, err := NewRequest(context.Background(), srv.URL+"/", body)
			require.NoError(t, err)
			client := &http.Client{Transport: &TokenTransport{Token: func(context.Context) (string, error) { return tok, nil }}}
			resp, err := client.Do(req)
			require.NoError(t, err)
			require.NoError(t, CheckResponse(resp))
			resp.Body.Close()
			s := <-got
			assert.Equal(t, "/v1/messages", s.path)
			assert.Equal(t, "text/event-stream", s.h.Get("Accept"))
			assert.Empty(t, req.Header.Get("Authorization"), "caller's request not modified")
			var sent map[string]any
			require.NoError(t, json.Unmarshal([]byte(s.body), &sent))
			assert.Equal(t, map[string]any{"type": "enabled", "budget_tokens": float64(1024)}, sent["thinking"])
			if IsOAuth(tok) {
				assert.Equal(t, "Bearer "+tok, s.h.Get("Authorization"))
				assert.Contains(t, s.body, "mcp__piauth__calc")
				assert.Contains(t, s.body, IdentityText)
			} else {
				assert.Equal(t, tok, s.h.Get("X-Api-Key"))
				assert.Equal(t, string(body), s.body)
			}
		})
	}
	boom := errors.New("no credential")
	req, err := NewRequest(context.Background(), srv.URL, body)
	require.NoError(t, err)
	_, err = (&TokenTransport{Token: func(context.Context) (string, error) { return "", boom }}).RoundTrip(req)
	assert.ErrorIs(t, err, boom)
}

func TestParamsBody(t *testing.T) {
	msgs := []json.RawMessage{UserMessage(`say "hi"`)}
	b, err := Params{Model: "m", MaxTokens: 10, Messages: msgs}.Body()
	require.NoError(t, err)
	assert.JSONEq(t, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"say \"hi\""}]}`, string(b))
	for _, p := range []Params{
		{MaxTokens: 10, Messages: msgs},
		{Model: "m", Messages: msgs},
		{Model: "m", MaxTokens: 10},
		{Model: "m", MaxTokens: 4000, Thinking: 512, Messages: msgs},
		{Model: "m", MaxTokens: 2000, Thinking: 2000, Messages: msgs},
	} {
		_, err := p.Body()
		assert.ErrorIs(t, err, ErrInvalidParams, "%+v", p)
	}
}

func TestCheckResponse(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   APIError
	}{
		{"json error", 429, http.Header{"Request-Id": {"req_1"}, "Retry-After": {"30"}},
			`{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests exceeded"},"request_id":"req_body"}`,
			APIError{Status: 429, Type: "rate_limit_error", Message: "Number of requests exceeded", RequestID: "req_1"}},
		{"request id from body", 529, http.Header{},
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_body"}`,
			APIError{Status: 529, Type: "overloaded_error", Message: "Overloaded", RequestID: "req_body"}},
		{"html", 502, http.Header{}, "<html>bad gateway</html>\n", APIError{Status: 502, Message: "<html>bad gateway</html>"}},
		{"empty", 503, http.Header{}, "", APIError{Status: 503, Message: "Service Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			require.NoError(t, err)
			err = CheckResponse(resp)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tt.want.Status, ae.Status)
			assert.Equal(t, tt.want.Type, ae.Type)
			assert.Equal(t, tt.want.Message, ae.Message)
			assert.Equal(t, tt.want.RequestID, ae.RequestID)
			assert.Equal(t, tt.header.Get("Retry-After"), ae.Header.Get("Retry-After"))
		})
	}
}

func TestErrorsMaskSecrets(t *testing.T) {
	secret := "sk-ant-oat01-" + strings.Repeat("Ab3", 20)
	e := &APIError{Status: 401, Type: "authentication_error", Message: "invalid token " + secret + "."}
	assert.NotContains(t, e.Error(), secret)
	assert.Contains(t, e.Error(), "sk-ant-oat01-Ab…3Ab3.")
	se := &StreamError{Type: "x", Message: secret}
	assert.NotContains(t, se.Error(), secret)
	assert.Equal(t, "****", redact.Mask("sk-ant-"), "no panic on bare prefix")
	assert.Equal(t, "sk-ant-api03-****", redact.Mask("sk-ant-api03-short"))
}
