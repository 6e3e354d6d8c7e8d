package emulator

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	msgThirdPartyWant = "Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage and keep going."
	msgOutOfExtraWant = "You're out of extra usage. Add more at claude.ai/settings/usage and keep going."
	msgDisabledWant   = "OAuth authentication is currently not allowed for this organization."
)

func TestTokenMarkers(t *testing.T) {
	clock := newClock()
	reset := strconv.FormatInt(clock.Now().Add(600*time.Second).Unix(), 10)
	tests := []struct {
		marker      string
		want        wantErr
		wantHeaders map[string]string // "" means absent
	}{
		{"disabled", wantErr{status: 403, typ: "permission_error", msg: msgDisabledWant}, map[string]string{"retry-after": ""}},
		{"invalid", wantErr{status: 401, typ: "authentication_error", msg: "invalid x-api-key"}, nil},
		{"extrausage", wantErr{status: 400, typ: "invalid_request_error", msg: msgThirdPartyWant}, map[string]string{"retry-after": ""}},
		{"outofextra", wantErr{status: 400, typ: "invalid_request_error", msg: msgOutOfExtraWant}, nil},
		{"longcontext", wantErr{status: 429, typ: "rate_limit_error", msg: "Extra usage is required for long context requests."}, nil},
		{"overloaded", wantErr{status: 529, typ: "overloaded_error", msg: "Overloaded"},
			map[string]string{"anthropic-ratelimit-unified-reset": "", "x-should-retry": "true"}},
		{"ratelimited", wantErr{status: 429, typ: "rate_limit_error", msg: "This request would exceed your account's rate limit. Please try again later."},
			map[string]string{"retry-after": "600", "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": reset}},
	}
	_, srv := start(t, Options{Now: clock.Now})
	for _, tt := range tests {
		t.Run(tt.marker, func(t *testing.T) {
			for _, h := range []http.Header{oauthHeaders(fakeTok("oat", "x-"+tt.marker+"-x")), apiKeyHeaders(fakeTok("api", tt.marker))} {
				resp := post(t, srv, "/v1/messages", h, body(nil))
				assertErr(t, resp, tt.want)
				if tt.marker == "longcontext" {
					assert.Empty(t, limitHeaders(resp.Header), "no limit headers")
				}
				for k, v := range tt.wantHeaders {
					assert.Equal(t, v, resp.Header.Get(k), k)
				}
			}
		})
	}
}

func TestDisabledMarkerOnEveryEndpoint(t *testing.T) {
	tok := fakeTok("oat", "disabled")
	_, srv := start(t, Options{})
	want := wantErr{status: 403, typ: "permission_error", msg: msgDisabledWant}
	assertErr(t, post(t, srv, "/v1/messages/count_tokens", oauthHeaders(tok), body(nil)), want)
	assertErr(t, get(t, srv, "/v1/models", oauthHeaders(tok)), want)
	assertErr(t, get(t, srv, "/api/oauth/usage", usageHeaders(tok)), want)
}

func TestScriptedOutcomeShapes(t *testing.T) {
	sc, err := ParseScenario([]byte(`{
	  "service": {"markers": {"overloaded": {"status": 529, "unified_reset_in": 18000}}},
	  "tokens": [
	    {"contains": "nan", "outcomes": [{"status": 429, "headers": {"retry-after": "NaN"}}]},
	    {"contains": "huge", "outcomes": [{"status": 429, "retry_after": 7999}]},
	    {"contains": "fake", "outcomes": [{"status": 429, "message": "Error", "no_limit_headers": true}]},
	    {"contains": "code", "outcomes": [{"status": 400, "error_code": "claude_code_version_too_old",
	      "message": "Claude Code 2.1.1 does not support this model; version 2.1.999 or newer is required"}]},
	    {"contains": "busy", "outcomes": [{"status": 529, "unified_reset_in": 14400, "retry_after": 20}]},
	    {"contains": "quiet", "outcomes": [{"status": 500, "headers": {"x-should-retry": ""}}]},
	    {"contains": "extra", "outcomes": [{"status": 200, "headers": {"anthropic-ratelimit-unified-overage-in-use": "true"}}]}
	  ]}`))
	require.NoError(t, err)
	clock := newClock()
	in := func(secs int) string {
		return strconv.FormatInt(clock.Now().Add(time.Duration(secs)*time.Second).Unix(), 10)
	}
	tests := []struct {
		token       string
		want        wantErr
		wantHeaders map[string]string
		noLimits    bool
	}{
		{"nan", wantErr{status: 429, typ: "rate_limit_error", msg: defaultMessage(429)},
			map[string]string{"retry-after": "NaN", "anthropic-ratelimit-unified-status": "rejected"}, false},
		{"huge", wantErr{status: 429, typ: "rate_limit_error", msg: defaultMessage(429)},
			map[string]string{"retry-after": "7999", "anthropic-ratelimit-unified-reset": in(7999)}, false},
		{"fake", wantErr{status: 429, typ: "rate_limit_error", msg: "Error"}, nil, true},
		{"code", wantErr{status: 400, typ: "invalid_request_error", code: "claude_code_version_too_old",
			msg: "Claude Code 2.1.1 does not support this model; version 2.1.999 or newer is required"}, nil, false},
		{"busy", wantErr{status: 529, typ: "overloaded_error", msg: "Overloaded"},
			map[string]string{"retry-after": "20", "anthropic-ratelimit-unified-reset": in(14400), "anthropic-ratelimit-unified-status": "allowed"}, false},
		{"overloaded", wantErr{status: 529, typ: "overloaded_error", msg: "Overloaded"},
			map[string]string{"anthropic-ratelimit-unified-reset": in(18000), "anthropic-ratelimit-unified-5h-reset": in(18000)}, false},
		{"quiet", wantErr{status: 500, typ: "api_error", msg: "Internal Server Error"}, map[string]string{"x-should-retry": ""}, false},
	}
	_, srv := start(t, Options{Scenario: sc, Now: clock.Now})
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", tt.token)), body(nil))
			assertErr(t, resp, tt.want)
			for k, v := range tt.wantHeaders {
				assert.Equal(t, v, resp.Header.Get(k), k)
			}
			if tt.noLimits {
				assert.Empty(t, limitHeaders(resp.Header))
			}
		})
	}
	t.Run("headers on a success", func(t *testing.T) {
		resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "extra")), body(nil))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "true", resp.Header.Get("anthropic-ratelimit-unified-overage-in-use"))
		assert.Equal(t, "allowed", resp.Header.Get("anthropic-ratelimit-unified-status"))
	})
}
