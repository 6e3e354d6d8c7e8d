package rotate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/piauth/piauth/pkg/stream"
)

func TestClassify(t *testing.T) {
	limited := http.Header{"Retry-After": {"30"}}
	unified := http.Header{"Anthropic-Ratelimit-Unified-Status": {"rejected"}}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassOK},
		{"429", &stream.APIError{Status: 429, Type: "rate_limit_error", Header: limited}, ClassRotate},
		{"429 without type", &stream.APIError{Status: 429, Header: limited}, ClassRotate},
		{"429 with unified headers only", &stream.APIError{Status: 429, Type: "rate_limit_error", Header: unified}, ClassRotate},
		// 2026: the fake 429 for a refused shape carries no limit header.
		{"429 without limit headers is a refused shape", &stream.APIError{Status: 429, Type: "rate_limit_error", Message: "Error"}, ClassShape},
		{"429 long context is the plan", &stream.APIError{Status: 429, Type: "rate_limit_error", Message: "Extra usage is required for long context requests."}, ClassFatal},
		{"403 org disabled", &stream.APIError{Status: 403, Type: "permission_error", Message: "OAuth authentication is currently not allowed for this organization."}, ClassDisabled},
		{"400 version too old by code", &stream.APIError{Status: 400, Type: "invalid_request_error", Code: "claude_code_version_too_old", Message: "too old"}, ClassVersion},
		{"400 version too old by message", &stream.APIError{Status: 400, Type: "invalid_request_error", Message: "Claude Code 2.1.75 does not support this model; version 2.1.280 or newer is required"}, ClassVersion},
		{"400 third-party classifier", &stream.APIError{Status: 400, Type: "invalid_request_error", Message: "Third-party apps now draw from your extra usage, not your plan limits."}, ClassFatal},
		{"400 out of extra usage", &stream.APIError{Status: 400, Type: "invalid_request_error", Message: "You're out of extra usage."}, ClassFatal},
		{"529", &stream.APIError{Status: 529, Type: "overloaded_error"}, ClassOverloaded},
		{"overloaded type on 500", &stream.APIError{Status: 500, Type: "overloaded_error"}, ClassOverloaded},
		{"401", &stream.APIError{Status: 401, Type: "authentication_error", Message: "invalid x-api-key"}, ClassAuth},
		{"authentication_error on 403", &stream.APIError{Status: 403, Type: "authentication_error"}, ClassAuth},
		{"400", &stream.APIError{Status: 400, Type: "invalid_request_error", Message: "prompt is too long"}, ClassFatal},
		{"400 mentioning a rate limit", &stream.APIError{Status: 400, Type: "invalid_request_error", Message: "explain rate limit headers"}, ClassFatal},
		{"413", &stream.APIError{Status: 413, Type: "request_too_large"}, ClassFatal},
		{"403 permission", &stream.APIError{Status: 403, Type: "permission_error"}, ClassFatal},
		{"500 api_error", &stream.APIError{Status: 500, Type: "api_error", Message: "Internal server error"}, ClassFatal},
		{"502 html", &stream.APIError{Status: 502, Message: "Bad Gateway"}, ClassFatal},
		{"503 saying overloaded", &stream.APIError{Status: 503, Message: "Service overloaded"}, ClassOverloaded},
		{"504 timeout", &stream.APIError{Status: 504, Type: "timeout_error"}, ClassFatal},
		{"wrapped api error", fmt.Errorf("chat: %w", &stream.APIError{Status: 429, Header: limited}), ClassRotate},
		{"stream overloaded", &stream.StreamError{Type: "overloaded_error", Message: "Overloaded"}, ClassOverloaded},
		{"stream rate limit", &stream.StreamError{Type: "rate_limit_error"}, ClassRotate},
		{"stream api_error", &stream.StreamError{Type: "api_error", Message: "Internal error"}, ClassFatal},
		{"stream unknown type saying too many requests", &stream.StreamError{Type: "x", Message: "Too Many Requests"}, ClassRotate},
		{"text 429", errors.New("HTTP 429 from upstream"), ClassRotate},
		{"text rate limit", errors.New("Rate limit reached"), ClassRotate},
		{"text too many requests", errors.New("too many requests"), ClassRotate},
		{"text overloaded", errors.New("API is Overloaded"), ClassOverloaded},
		{"text 401", errors.New("got 401"), ClassAuth},
		{"text invalid api key", errors.New("Invalid API Key"), ClassAuth},
		{"text authentication_error", errors.New(`{"type":"authentication_error"}`), ClassAuth},
		{"text other", errors.New("connection reset by peer"), ClassFatal},
		{"context canceled", context.Canceled, ClassFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Classify(tt.err), "class %s", Classify(tt.err))
		})
	}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"shape", &stream.APIError{Status: 429, Type: "rate_limit_error", Message: "Error"}, "not a rate limit; no key was cooled down"},
		{"third party", &stream.APIError{Status: 400, Message: "Third-party apps now draw from your extra usage, not your plan limits."}, "your plan limits are not used up"},
		{"out of extra", &stream.APIError{Status: 400, Message: "You're out of extra usage. Add more."}, "extra usage is spent"},
		{"long context", &stream.APIError{Status: 429, Message: "Extra usage is required for long context requests."}, "long-context"},
		{"disabled", &stream.APIError{Status: 403, Message: "OAuth authentication is currently not allowed for this organization."}, "does not allow OAuth"},
		{"auth", &stream.APIError{Status: 401, Type: "authentication_error"}, "run piauth login"},
		{"plain 400", &stream.APIError{Status: 400, Message: "prompt is too long"}, ""},
		{"not an api error", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				assert.Empty(t, Hint(tt.err))
				return
			}
			assert.Contains(t, Hint(tt.err), tt.want)
		})
	}
}

func TestCooldown(t *testing.T) {
	now := time.Date(2026, 11, 28, 17, 54, 10, 0, time.UTC)
	epoch := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name  string
		h     http.Header
		class Class
		want  time.Duration
	}{
		{"retry-after seconds", hdr("retry-after", "600"), ClassRotate, 10 * time.Minute},
		{"retry-after wins over unified", hdr("retry-after", "30", "anthropic-ratelimit-unified-reset", epoch(time.Hour)), ClassRotate, 30 * time.Second},
		{"retry-after http date", hdr("retry-after", now.Add(90*time.Second).Format(http.TimeFormat)), ClassRotate, 90 * time.Second},
		{"retry-after-ms", hdr("retry-after-ms", "1500", "retry-after", "2"), ClassRotate, 1500 * time.Millisecond},
		{"retry-after capped", hdr("retry-after", "999999"), ClassRotate, 24 * time.Hour},
		{"retry-after on overloaded", hdr("retry-after", "5"), ClassOverloaded, 5 * time.Second},
		{"overloaded default", hdr("anthropic-ratelimit-unified-reset", epoch(time.Hour)), ClassOverloaded, 30 * time.Second},
		{"overloaded retry-after is capped at 30s", hdr("retry-after", "3600"), ClassOverloaded, 30 * time.Second},
		{"overloaded ignores a rejected unified window", hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-5h-status", "rejected", "anthropic-ratelimit-unified-5h-reset", epoch(4*time.Hour)), ClassOverloaded, 30 * time.Second},
		{"retry-after NaN", hdr("retry-after", "NaN"), ClassRotate, time.Minute},
		{"retry-after +Inf", hdr("retry-after", "+Inf"), ClassRotate, 24 * time.Hour},
		{"retry-after-ms 1e30", hdr("retry-after-ms", "1e30"), ClassRotate, 24 * time.Hour},
		{"latest rejected window", hdr(
			"anthropic-ratelimit-unified-status", "rejected",
			"anthropic-ratelimit-unified-5h-status", "rejected",
			"anthropic-ratelimit-unified-5h-reset", epoch(2*time.Hour),
			"anthropic-ratelimit-unified-7d-status", "rejected",
			"anthropic-ratelimit-unified-7d-reset", epoch(50*time.Hour),
			"anthropic-ratelimit-unified-7d_opus-status", "allowed",
			"anthropic-ratelimit-unified-7d_opus-reset", epoch(60*time.Hour),
			"anthropic-ratelimit-unified-reset", epoch(time.Hour),
		), ClassRotate, 24 * time.Hour},
		{"rejected window only", hdr(
			"anthropic-ratelimit-unified-5h-status", "allowed",
			"anthropic-ratelimit-unified-5h-reset", epoch(2*time.Hour),
			"anthropic-ratelimit-unified-7d-status", "rejected",
			"anthropic-ratelimit-unified-7d-reset", epoch(3*time.Hour),
			"anthropic-ratelimit-unified-overage-status", "rejected",
			"anthropic-ratelimit-unified-overage-reset", epoch(20*time.Hour),
			"anthropic-ratelimit-unified-reset", epoch(2*time.Hour),
		), ClassRotate, 3 * time.Hour},
		{"unified reset", hdr("anthropic-ratelimit-unified-status", "rejected", "anthropic-ratelimit-unified-reset", epoch(45*time.Minute)), ClassRotate, 45 * time.Minute},
		{"unified reset in the past", hdr("anthropic-ratelimit-unified-reset", epoch(-time.Minute)), ClassRotate, time.Minute},
		{"nothing", http.Header{}, ClassRotate, time.Minute},
		{"nil header", nil, ClassRotate, time.Minute},
		{"zero retry-after", hdr("retry-after", "0"), ClassRotate, time.Minute},
		{"garbage", hdr("retry-after", "soon", "anthropic-ratelimit-unified-reset", "later"), ClassRotate, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, now.Add(tt.want), Cooldown(tt.h, tt.class, now))
		})
	}
}

func TestParseUnified(t *testing.T) {
	h := http.Header{}
	h.Set("anthropic-ratelimit-unified-status", "allowed_warning")
	h.Set("anthropic-ratelimit-unified-5h-utilization", "0.97")
	h.Set("anthropic-ratelimit-unified-7d-utilization", "0.31")
	h.Set("anthropic-ratelimit-unified-reset", "1795000000")
	u, ok := ParseUnified(h)
	assert.True(t, ok)
	assert.Equal(t, Unified{Status: "allowed_warning", Utilization: 0.97, FiveHour: 0.97, Reset: time.Unix(1795000000, 0)}, u)

	h.Set("anthropic-ratelimit-unified-7d-utilization", "Inf")
	u, _ = ParseUnified(h)
	assert.Equal(t, float64(maxUtilization), u.Utilization, "an infinite utilisation is bounded")
	h.Set("anthropic-ratelimit-unified-7d-utilization", "NaN")
	u, _ = ParseUnified(h)
	assert.Equal(t, 0.97, u.Utilization, "NaN is ignored")

	_, ok = ParseUnified(http.Header{"Anthropic-Ratelimit-Requests-Remaining": {"10"}})
	assert.False(t, ok, "API-key answers carry no unified status")
}

func TestAllLimitedError(t *testing.T) {
	at := time.Date(2026, 11, 28, 17, 54, 10, 0, time.UTC)
	tests := []struct {
		name string
		err  *AllLimitedError
		want string
	}{
		{"several", &AllLimitedError{N: 3, FreeAt: at.Add(9*time.Minute + 55*time.Second), At: at},
			"all 3 keys are rate-limited; first one frees at 18:04:05 (in 9m55s)"},
		{"one", &AllLimitedError{N: 1, FreeAt: at.Add(30 * time.Second), At: at},
			"the only usable key is rate-limited; it frees at 17:54:40 (in 30s)"},
		{"tomorrow", &AllLimitedError{N: 2, FreeAt: at.Add(10 * time.Hour), At: at},
			"all 2 keys are rate-limited; first one frees at Nov 29 03:54:10 (in 10h)"},
		{"overloaded", &AllLimitedError{N: 2, Overloaded: true, FreeAt: at.Add(30 * time.Second), At: at},
			"all 2 keys are overloaded; first one frees at 17:54:40 (in 30s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
			assert.ErrorIs(t, fmt.Errorf("chat: %w", tt.err), ErrAllKeysLimited)
		})
	}
}
