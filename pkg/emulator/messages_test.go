package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMessagesRules(t *testing.T) {
	oat := fakeTok("oat", "good")
	api := fakeTok("api", "good")
	without := func(h http.Header, k string) http.Header { h.Del(k); return h }
	with := func(h http.Header, k, v string) http.Header { h.Set(k, v); return h }
	tests := []struct {
		name       string
		h          http.Header
		body       string
		wantStatus int
		wantType   string
		wantMsg    string
	}{
		{"oauth ok", oauthHeaders(oat), body(nil), 200, "", ""},
		{"api key ok without identity or beta", apiKeyHeaders(api), body(func(m map[string]any) {
			delete(m, "system")
			m["tools"] = []any{map[string]any{"name": "get_weather"}}
		}), 200, "", ""},
		{"system as identity string", oauthHeaders(oat), body(func(m map[string]any) { m["system"] = IdentityText }), 200, "", ""},
		{"server tool passes", oauthHeaders(oat), body(func(m map[string]any) {
			m["tools"] = []any{map[string]any{"type": "web_search_20250305", "name": "web_search"}}
		}), 200, "", ""},
		{"no credentials", without(oauthHeaders(oat), "Authorization"), body(nil), 401, "authentication_error", "x-api-key"},
		{"oauth token in x-api-key", with(without(oauthHeaders(oat), "Authorization"), "X-Api-Key", oat), body(nil), 401, "authentication_error", "invalid x-api-key"},
		{"bearer plus x-api-key", with(oauthHeaders(oat), "X-Api-Key", api), body(nil), 401, "authentication_error", "invalid x-api-key"},
		{"garbage api key", apiKeyHeaders("not-a-key-at-all"), body(nil), 401, "authentication_error", "invalid x-api-key"},
		{"api key as bearer", oauthHeaders(api), body(nil), 401, "authentication_error", ""},
		{"missing anthropic-version", without(oauthHeaders(oat), "Anthropic-Version"), body(nil), 400, "invalid_request_error", "anthropic-version"},
		{"missing oauth beta", with(oauthHeaders(oat), "Anthropic-Beta", "claude-code-20250219"), body(nil), 401, "authentication_error", "OAuth authentication is currently not supported."},
		// 2026: a missing identity earns a fake 429 "Error" (identity_test.go has the details).
		{"no system", oauthHeaders(oat), body(func(m map[string]any) { delete(m, "system") }), 429, "rate_limit_error", "Error"},
		{"identity not first", oauthHeaders(oat), body(func(m map[string]any) {
			m["system"] = []any{map[string]any{"type": "text", "text": "Be brief."}, map[string]any{"type": "text", "text": IdentityText}}
		}), 429, "rate_limit_error", "Error"},
		{"identity with extra text", oauthHeaders(oat), body(func(m map[string]any) {
			m["system"] = []any{map[string]any{"type": "text", "text": IdentityText + " Be brief."}}
		}), 429, "rate_limit_error", "Error"},
		{"third-party tool", oauthHeaders(oat), body(func(m map[string]any) {
			m["tools"] = []any{map[string]any{"name": "get_weather"}}
		}), 400, "invalid_request_error", "Third-party apps now draw from your extra usage, not your plan limits."},
		{"lowercase claude code tool", oauthHeaders(oat), body(func(m map[string]any) {
			m["tools"] = []any{map[string]any{"name": "read"}}
		}), 400, "invalid_request_error", "Third-party apps"},
		{"missing model", oauthHeaders(oat), body(func(m map[string]any) { delete(m, "model") }), 400, "invalid_request_error", "model"},
		{"zero max_tokens", oauthHeaders(oat), body(func(m map[string]any) { m["max_tokens"] = 0 }), 400, "invalid_request_error", "max_tokens"},
		{"missing max_tokens", apiKeyHeaders(api), body(func(m map[string]any) { delete(m, "max_tokens") }), 400, "invalid_request_error", "max_tokens"},
		{"empty messages", oauthHeaders(oat), body(func(m map[string]any) { m["messages"] = []any{} }), 400, "invalid_request_error", "messages"},
		{"thinking budget too small", oauthHeaders(oat), body(func(m map[string]any) {
			m["thinking"] = map[string]any{"type": "enabled", "budget_tokens": 1000}
		}), 400, "invalid_request_error", "budget_tokens"},
		{"thinking budget not below max_tokens", oauthHeaders(oat), body(func(m map[string]any) {
			m["thinking"] = map[string]any{"type": "enabled", "budget_tokens": 4096}
		}), 400, "invalid_request_error", "max_tokens"},
		{"thinking ok", oauthHeaders(oat), body(func(m map[string]any) {
			m["thinking"] = map[string]any{"type": "enabled", "budget_tokens": 1024}
		}), 200, "", ""},
		{"malformed json", oauthHeaders(oat), "{", 400, "invalid_request_error", ""},
		{"marker invalid", oauthHeaders(fakeTok("oat", "invalid")), body(nil), 401, "authentication_error", ""},
		{"marker ratelimited", oauthHeaders(fakeTok("oat", "ratelimited")), body(nil), 429, "rate_limit_error", ""},
		{"marker overloaded", oauthHeaders(fakeTok("oat", "overloaded")), body(nil), 529, "overloaded_error", ""},
		{"marker midstream non-stream", oauthHeaders(fakeTok("oat", "midstream")), body(nil), 529, "overloaded_error", ""},
		{"api key marker", apiKeyHeaders(fakeTok("api", "ratelimited")), body(nil), 429, "rate_limit_error", ""},
	}
	_, srv := start(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv, "/v1/messages", tt.h, tt.body)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Regexp(t, `^req_\w+$`, resp.Header.Get("request-id"))
			if tt.wantStatus == 200 {
				var m map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
				assert.Equal(t, "message", m["type"])
				return
			}
			e := decodeAPIErr(t, resp)
			assert.Equal(t, "error", e.Type)
			assert.Equal(t, tt.wantType, e.Error.Type)
			assert.Contains(t, e.Error.Message, tt.wantMsg)
			assert.Equal(t, resp.Header.Get("request-id"), e.RequestID)
		})
	}
}

func TestRateLimitHeaders(t *testing.T) {
	clock := newClock()
	_, srv := start(t, Options{Now: clock.Now})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "x-ratelimited-x")), body(nil))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	reset := strconv.FormatInt(clock.Now().Add(600*time.Second).Unix(), 10)
	for k, v := range map[string]string{
		"retry-after":                                      "600",
		"anthropic-ratelimit-unified-status":               "rejected",
		"anthropic-ratelimit-unified-5h-status":            "rejected",
		"anthropic-ratelimit-unified-5h-reset":             reset,
		"anthropic-ratelimit-unified-reset":                reset,
		"anthropic-ratelimit-unified-representative-claim": "five_hour",
		"x-should-retry":                                   "true",
	} {
		assert.Equal(t, v, resp.Header.Get(k), k)
	}
}

func TestHealthyHeaders(t *testing.T) {
	clock := newClock()
	_, srv := start(t, Options{Now: clock.Now})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "fine")), body(nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	h := resp.Header
	assert.Equal(t, "allowed", h.Get("anthropic-ratelimit-unified-status"))
	assert.Equal(t, "0.12", h.Get("anthropic-ratelimit-unified-5h-utilization"))
	assert.Equal(t, "0.31", h.Get("anthropic-ratelimit-unified-7d-utilization"))
	assert.Equal(t, strconv.FormatInt(time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC).Unix(), 10), h.Get("anthropic-ratelimit-unified-5h-reset"))
	assert.NotEmpty(t, h.Get("anthropic-ratelimit-unified-7d-reset"))
	assert.NotEmpty(t, h.Get("request-id"))
}

func TestScenarioSequences(t *testing.T) {
	sc, err := ParseScenario([]byte(`{
	  "unified": {"five_hour": 0.2},
	  "tokens": [
	    {"match": "` + fakeTok("oat", "first") + `", "outcomes": [{"status": 429, "retry_after": 2}, {"status": 200}]},
	    {"contains": "busy", "unified": {"five_hour": 0.97, "status": "allowed_warning"},
	     "outcomes": [{"status": 529}, {"status": 500, "type": "api_error", "message": "boom"}, {"status": 200}]},
	    {"contains": "ratelimited", "reply": {"text": "scripted wins over marker"}}
	  ]}`))
	require.NoError(t, err)
	clock := newClock()
	e, srv := start(t, Options{Scenario: sc, Now: clock.Now})

	type want struct {
		status int
		typ    string
	}
	run := func(tok string, wants []want) {
		for i, w := range wants {
			resp := post(t, srv, "/v1/messages", oauthHeaders(tok), body(nil))
			assert.Equal(t, w.status, resp.StatusCode, "request %d", i)
			if w.status != 200 {
				assert.Equal(t, w.typ, decodeAPIErr(t, resp).Error.Type, "request %d", i)
			}
			if w.status == 429 {
				assert.Equal(t, "2", resp.Header.Get("retry-after"))
				assert.Equal(t, strconv.FormatInt(clock.Now().Unix()+2, 10), resp.Header.Get("anthropic-ratelimit-unified-5h-reset"))
			}
		}
	}
	run(fakeTok("oat", "first"), []want{{429, "rate_limit_error"}, {200, ""}, {200, ""}})
	run(fakeTok("oat", "first-not-exact-ratelimited"), []want{{200, ""}})
	run(fakeTok("oat", "busy-1"), []want{{529, "overloaded_error"}, {500, "api_error"}, {200, ""}, {200, ""}})

	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "busy-2")), body(nil))
	assert.Equal(t, "allowed_warning", resp.Header.Get("anthropic-ratelimit-unified-status"))
	assert.Equal(t, "0.97", resp.Header.Get("anthropic-ratelimit-unified-5h-utilization"))
	resp = post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "plain")), body(nil))
	assert.Equal(t, "0.2", resp.Header.Get("anthropic-ratelimit-unified-5h-utilization"))

	e.Reset()
	run(fakeTok("oat", "first"), []want{{429, "rate_limit_error"}, {200, ""}})
}

func TestStatsAndReset(t *testing.T) {
	_, srv := start(t, Options{})
	n := 40
	if testing.Short() {
		n = 10
	}
	toks := []string{fakeTok("oat", "a"), fakeTok("oat", "b-ratelimited")}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(body(nil)))
			req.Header = oauthHeaders(toks[i%2])
			resp, err := srv.Client().Do(req)
			if assert.NoError(t, err) {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	getStats := func() Stats {
		resp, err := srv.Client().Get(srv.URL + "/_emulator/stats")
		require.NoError(t, err)
		defer resp.Body.Close()
		var raw map[string]json.RawMessage
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
		for _, k := range []string{"requests", "tokens", "refreshes", "rejected_refreshes", "logins"} {
			require.Contains(t, raw, k)
		}
		var st Stats
		b, _ := json.Marshal(raw)
		require.NoError(t, json.Unmarshal(b, &st))
		return st
	}
	st := getStats()
	assert.Equal(t, int64(n), st.Requests["/v1/messages"])
	assert.Equal(t, map[string]int64{Fingerprint(toks[0]): int64(n / 2), Fingerprint(toks[1]): int64(n / 2)}, st.Tokens)
	assert.Len(t, Fingerprint(toks[0]), 12)
	assert.NotContains(t, st.Requests, "/_emulator/stats")

	resp := post(t, srv, "/_emulator/reset", http.Header{}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	st = getStats()
	assert.Empty(t, st.Requests)
	assert.Empty(t, st.Tokens)
}

func TestRequestLogMasksTokens(t *testing.T) {
	var buf testenv.Buffer
	tok := fakeTok("oat", "secretpart-logged")
	_, srv := start(t, Options{Log: &buf})
	post(t, srv, "/v1/messages", oauthHeaders(tok), body(nil))
	out := buf.String()
	assert.Contains(t, out, "POST /v1/messages 200 key=sk-ant-oat01-se…test")
	assert.NotContains(t, out, "secretpart")
}

func TestNotFound(t *testing.T) {
	_, srv := start(t, Options{})
	resp, err := srv.Client().Get(srv.URL + "/v1/nope")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_found_error", decodeAPIErr(t, resp).Error.Type)
}
