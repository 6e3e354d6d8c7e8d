package emulator

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCountTokens(t *testing.T) {
	noMax := func(m map[string]any) { delete(m, "max_tokens") }
	tests := []struct {
		name    string
		headers http.Header
		body    string
		status  int
		errType string
	}{
		{name: "oauth, no max_tokens", headers: oauthHeaders(fakeTok("oat", "count")), body: body(noMax), status: 200},
		{name: "api key", headers: apiKeyHeaders(fakeTok("api", "count")), body: body(noMax), status: 200},
		{name: "no credentials", headers: http.Header{"Anthropic-Version": {"2023-06-01"}}, body: body(noMax), status: 401, errType: "authentication_error"},
		{name: "oauth without identity", headers: oauthHeaders(fakeTok("oat", "count")),
			body: body(func(m map[string]any) { noMax(m); delete(m, "system") }), status: 429, errType: "rate_limit_error"},
		{name: "oauth third-party tool", headers: oauthHeaders(fakeTok("oat", "count")),
			body: body(func(m map[string]any) { m["tools"] = []any{map[string]any{"name": "read_file"}} }), status: 400, errType: "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, srv := start(t, Options{})
			resp := post(t, srv, "/v1/messages/count_tokens", tt.headers, tt.body)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.errType != "" {
				assert.Equal(t, tt.errType, decodeAPIErr(t, resp).Error.Type)
				return
			}
			var out struct {
				InputTokens int `json:"input_tokens"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			assert.Equal(t, len(tt.body)/4, out.InputTokens)
			assert.Equal(t, int64(1), e.Stats().Requests["/v1/messages/count_tokens"])
		})
	}
}
