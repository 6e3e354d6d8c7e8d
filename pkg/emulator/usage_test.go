package emulator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// usageHeaders are the headers the usage endpoint needs.
func usageHeaders(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}, "Anthropic-Beta": {OAuthBeta}, "User-Agent": {"claude-code/2.1.300"}}
}

func decodeUsage(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var u map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&u))
	return u
}

func TestUsageDefaults(t *testing.T) {
	five := 0.5
	clock := newClock()
	_, srv := start(t, Options{Now: clock.Now, Scenario: &Scenario{Unified: &Unified{FiveHour: &five}}})
	u := decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "usage"))))

	for _, k := range []string{"five_hour", "seven_day", "seven_day_oauth_apps"} {
		w, ok := u[k].(map[string]any)
		require.True(t, ok, k)
		resets, err := time.Parse(time.RFC3339, w["resets_at"].(string))
		require.NoError(t, err, k)
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`, w["resets_at"], "Python isoformat")
		assert.True(t, resets.After(clock.Now()), k)
	}
	assert.InDelta(t, 50.0, u["five_hour"].(map[string]any)["utilization"], 1e-9, "percent, not fraction")
	assert.InDelta(t, 31.0, u["seven_day"].(map[string]any)["utilization"], 1e-9)
	for _, k := range []string{"seven_day_opus", "seven_day_sonnet", "seven_day_fable"} {
		assert.Contains(t, u, k)
		assert.Nil(t, u[k], k)
	}
	assert.Equal(t, map[string]any{"is_enabled": false, "monthly_limit": nil, "used_credits": nil, "utilization": nil}, u["extra_usage"])
	limits := u["limits"].([]any)
	require.Len(t, limits, 2)
	session := limits[0].(map[string]any)
	assert.Equal(t, "session", session["kind"])
	assert.InDelta(t, 50.0, session["percent"], 1e-9)
	assert.Equal(t, "normal", session["severity"])
	assert.Equal(t, true, session["is_active"])
	assert.Nil(t, session["scope"])
	assert.Equal(t, "weekly_all", limits[1].(map[string]any)["kind"])
}

func TestUsageRules(t *testing.T) {
	tok := fakeTok("oat", "usage")
	h := usageHeaders(tok)
	unauthorized := func(msg string) wantErr { return wantErr{status: 401, typ: "authentication_error", msg: msg} }
	tests := []struct {
		name string
		h    http.Header
		want wantErr
	}{
		{"no token", withHeader(h, "Authorization", ""), unauthorized("OAuth token required")},
		{"api key", withHeader(withHeader(h, "Authorization", ""), "X-Api-Key", fakeTok("api", "k")), unauthorized("OAuth token required")},
		{"no beta", withHeader(h, "Anthropic-Beta", ""), unauthorized("OAuth authentication is currently not supported.")},
		{"invalid marker", withHeader(h, "Authorization", "Bearer "+fakeTok("oat", "invalid")), unauthorized("invalid x-api-key")},
		{"no user-agent", withHeader(h, "User-Agent", ""), wantErr{status: 429, typ: "rate_limit_error", msg: "Rate limited. Please try again later."}},
		{"claude-cli user-agent", withHeader(h, "User-Agent", "claude-cli/2.1.300 (external, cli)"), wantErr{status: 429, typ: "rate_limit_error", msg: "Rate limited. Please try again later."}},
		{"bare prefix", withHeader(h, "User-Agent", "claude-code/"), wantErr{status: 429, typ: "rate_limit_error", msg: "Rate limited. Please try again later."}},
	}
	e, srv := start(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, srv, "/api/oauth/usage", tt.h)
			assertErr(t, resp, tt.want)
			assert.Empty(t, resp.Header.Get("retry-after"))
		})
	}
	assert.Equal(t, int64(4), e.Stats().UsageCalls[Fingerprint(tok)], "every call with the token is counted")
}

func TestUsageScripted(t *testing.T) {
	sc, err := ParseScenario([]byte(`{
	  "usage_report": {"five_hour": 19, "seven_day": 41},
	  "tokens": [
	    {"contains": "limited", "usage_outcomes": [{"status": 429, "retry_after": 120}, {"status": 200}]},
	    {"contains": "scoped", "usage_report": {
	      "omit_windows": true,
	      "limits": [
	        {"kind": "session", "percent": 100, "resets_in": 3600},
	        {"kind": "weekly_scoped", "group": "weekly", "percent": 85, "model": "claude-opus-5-5", "resets_at": "2026-12-05T10:00:00.000001+00:00"},
	        {"kind": "weekly_all", "percent": 10, "is_active": false, "severity": "custom"}
	      ],
	      "extra_usage": {"is_enabled": true, "monthly_limit": 50, "used_credits": 12.5, "utilization": 25}}},
	    {"contains": "models", "usage_report": {"seven_day_opus": 70, "seven_day_fable": 5, "seven_day_oauth_apps": 3}}
	  ]}`))
	require.NoError(t, err)
	clock := newClock()
	e, srv := start(t, Options{Scenario: sc, Now: clock.Now})

	t.Run("scenario report", func(t *testing.T) {
		u := decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "plain"))))
		assert.InDelta(t, 19.0, u["five_hour"].(map[string]any)["utilization"], 1e-9)
		assert.InDelta(t, 41.0, u["seven_day"].(map[string]any)["utilization"], 1e-9)
	})
	t.Run("error then answer", func(t *testing.T) {
		tok := fakeTok("oat", "limited")
		resp := get(t, srv, "/api/oauth/usage", usageHeaders(tok))
		assertErr(t, resp, wantErr{status: 429, typ: "rate_limit_error", msg: defaultMessage(429)})
		assert.Equal(t, "120", resp.Header.Get("retry-after"))
		assert.Empty(t, resp.Header.Get("anthropic-ratelimit-unified-status"), "the usage endpoint sends no unified headers")
		decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(tok)))
		decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(tok)))
		assert.Equal(t, int64(3), e.Stats().UsageCalls[Fingerprint(tok)])
		e.Reset()
		assert.Empty(t, e.Stats().UsageCalls)
		assert.Equal(t, http.StatusTooManyRequests, get(t, srv, "/api/oauth/usage", usageHeaders(tok)).StatusCode, "reset rewinds usage outcomes")
	})
	t.Run("limits only", func(t *testing.T) {
		u := decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "scoped"))))
		for _, k := range []string{"five_hour", "seven_day", "seven_day_opus", "seven_day_oauth_apps"} {
			assert.NotContains(t, u, k)
		}
		limits := u["limits"].([]any)
		require.Len(t, limits, 3)
		session, scoped, weekly := limits[0].(map[string]any), limits[1].(map[string]any), limits[2].(map[string]any)
		assert.Equal(t, "critical", session["severity"])
		resets, err := time.Parse(time.RFC3339, session["resets_at"].(string))
		require.NoError(t, err)
		assert.WithinDuration(t, clock.Now().Add(time.Hour), resets, 2*time.Second)
		assert.Equal(t, map[string]any{"kind": "weekly_scoped", "group": "weekly", "percent": 85.0, "severity": "warning",
			"resets_at": "2026-12-05T10:00:00.000001+00:00", "is_active": true,
			"scope": map[string]any{"model": map[string]any{"id": "claude-opus-5-5", "display_name": "Claude Opus 5.5"}}}, scoped)
		assert.Equal(t, false, weekly["is_active"])
		assert.Equal(t, "custom", weekly["severity"])
		assert.Equal(t, map[string]any{"is_enabled": true, "monthly_limit": 50.0, "used_credits": 12.5, "utilization": 25.0}, u["extra_usage"])
	})
	t.Run("per-model windows", func(t *testing.T) {
		u := decodeUsage(t, get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "models"))))
		assert.InDelta(t, 70.0, u["seven_day_opus"].(map[string]any)["utilization"], 1e-9)
		assert.InDelta(t, 5.0, u["seven_day_fable"].(map[string]any)["utilization"], 1e-9)
		assert.InDelta(t, 3.0, u["seven_day_oauth_apps"].(map[string]any)["utilization"], 1e-9)
		assert.Nil(t, u["seven_day_sonnet"])
		assert.InDelta(t, 12.0, u["five_hour"].(map[string]any)["utilization"], 1e-9, "a token's report replaces the scenario's")
	})
}
