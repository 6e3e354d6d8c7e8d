package pkce

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redact "github.com/piauth/piauth/internal/secret"
)

type reply struct {
	status int
	header map[string]string
	body   string
}

// tokenServer is a scripted token endpoint that records every request body.
type tokenServer struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  []string
	replies []reply
}

func newTokenServer(t *testing.T, replies ...reply) *tokenServer {
	t.Helper()
	ts := &tokenServer{replies: replies}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts.mu.Lock()
		n := len(ts.bodies)
		ts.bodies = append(ts.bodies, string(body))
		rep := ts.replies[min(n, len(ts.replies)-1)]
		ts.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/oauth/token" ||
			r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"error":"invalid_request","error_description":"want JSON POST"}`, http.StatusBadRequest)
			return
		}
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) requests() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.bodies...)
}

var fixedNow = time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)

// testConfig points at ts and records sleeps instead of waiting.
func testConfig(ts *tokenServer, sleeps *[]time.Duration) *Config {
	return &Config{
		ClientID:      "test-client",
		TokenEndpoint: ts.URL + "/v1/oauth/token",
		HTTP:          ts.Client(),
		Now:           func() time.Time { return fixedNow },
		Sleep: func(ctx context.Context, d time.Duration) error {
			*sleeps = append(*sleeps, d)
			return ctx.Err()
		},
	}
}

// fakeTok builds a token-looking value at runtime.
func fakeTok(kind, tail string) string { return "sk-ant-" + kind + "01-" + tail }

const okBody = `{"access_token":"acc-1","refresh_token":"ref-2","expires_in":28800,"token_type":"Bearer",
 "account":{"uuid":"u-1","email_address":"me@example.com"},"organization":{"uuid":"o-1"}}`

func TestExchange(t *testing.T) {
	ts := newTokenServer(t, reply{status: 200, body: okBody})
	var sleeps []time.Duration
	tok, err := testConfig(ts, &sleeps).Exchange(context.Background(), "the-code", "the-state", "the-verifier", "http://localhost:1/callback")
	require.NoError(t, err)
	assert.Equal(t, &Token{AccessToken: "acc-1", RefreshToken: "ref-2", ExpiresIn: 28800,
		Account: &Account{UUID: "u-1", Email: "me@example.com"}}, tok)
	reqs := ts.requests()
	require.Len(t, reqs, 1)
	assert.JSONEq(t, `{"grant_type":"authorization_code","client_id":"test-client","code":"the-code",
		"state":"the-state","redirect_uri":"http://localhost:1/callback","code_verifier":"the-verifier"}`, reqs[0])
	assert.Empty(t, sleeps)
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantRefresh string
		wantAccount *Account
	}{
		{name: "rotated refresh token", body: okBody, wantRefresh: "ref-2", wantAccount: &Account{UUID: "u-1", Email: "me@example.com"}},
		{name: "no new refresh token keeps old", body: `{"access_token":"acc-1","expires_in":28800}`, wantRefresh: "ref-old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, reply{status: 200, body: tt.body})
			var sleeps []time.Duration
			tok, err := testConfig(ts, &sleeps).Refresh(context.Background(), "ref-old")
			require.NoError(t, err)
			assert.Equal(t, "acc-1", tok.AccessToken)
			assert.Equal(t, tt.wantRefresh, tok.RefreshToken)
			assert.Equal(t, tt.wantAccount, tok.Account)
			reqs := ts.requests()
			require.Len(t, reqs, 1)
			assert.JSONEq(t, `{"grant_type":"refresh_token","client_id":"test-client","refresh_token":"ref-old"}`, reqs[0])
			assert.NotContains(t, reqs[0], "scope")
		})
	}
}

func TestTokenErrors(t *testing.T) {
	secret := fakeTok("ort", strings.Repeat("q", 12)+"9876")
	tests := []struct {
		name        string
		reply       reply
		wantStatus  int
		wantCode    string
		wantDesc    string
		invalidGrnt bool
	}{
		{name: "oauth invalid_grant", reply: reply{status: 400, body: `{"error":"invalid_grant","error_description":"Refresh token ` + secret + ` revoked"}`},
			wantStatus: 400, wantCode: "invalid_grant", wantDesc: "Refresh token sk-ant-ort01-qq…9876 revoked", invalidGrnt: true},
		{name: "invalid_scope", reply: reply{status: 400, body: `{"error":"invalid_scope"}`},
			wantStatus: 400, wantCode: "invalid_scope"},
		{name: "anthropic error shape", reply: reply{status: 401, body: `{"type":"error","error":{"type":"authentication_error","message":"nope"}}`},
			wantStatus: 401, wantCode: "authentication_error", wantDesc: "nope"},
		{name: "not json", reply: reply{status: 403, body: `<html>blocked</html>`},
			wantStatus: 403, wantDesc: "Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.reply)
			var sleeps []time.Duration
			_, err := testConfig(ts, &sleeps).Refresh(context.Background(), secret)
			require.Error(t, err)
			var terr *TokenError
			require.ErrorAs(t, err, &terr)
			assert.Equal(t, tt.wantStatus, terr.Status)
			assert.Equal(t, tt.wantCode, terr.Code)
			assert.Equal(t, tt.wantDesc, terr.Description)
			assert.Equal(t, tt.invalidGrnt, errors.Is(err, ErrInvalidGrant))
			assert.NotContains(t, err.Error(), secret)
			assert.Contains(t, err.Error(), redact.Mask(secret))
			assert.Len(t, ts.requests(), 1, "4xx must not be retried")
			assert.Empty(t, sleeps)
		})
	}
}

func TestTokenSuccessWithoutAccessToken(t *testing.T) {
	ts := newTokenServer(t, reply{status: 200, body: `{"refresh_token":"r"}`})
	var sleeps []time.Duration
	_, err := testConfig(ts, &sleeps).Exchange(context.Background(), "c", "s", "v", "r")
	assert.ErrorContains(t, err, "no access_token")
}

func TestTokenRetries(t *testing.T) {
	ok := reply{status: 200, body: okBody}
	tests := []struct {
		name       string
		replies    []reply
		wantErr    bool
		wantStatus int
		wantCalls  int
		wantSleeps []time.Duration
	}{
		{name: "429 retry-after seconds honoured",
			replies:   []reply{{status: 429, header: map[string]string{"retry-after": "3"}, body: `{"error":"rate_limited"}`}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "retry-after capped at 30s",
			replies:   []reply{{status: 429, header: map[string]string{"retry-after": "120"}}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{30 * time.Second}},
		{name: "retry-after http date",
			replies:   []reply{{status: 503, header: map[string]string{"retry-after": fixedNow.Add(10 * time.Second).Format(http.TimeFormat)}}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{10 * time.Second}},
		{name: "retry-after-ms",
			replies:   []reply{{status: 429, header: map[string]string{"retry-after-ms": "1500", "retry-after": "9"}}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{1500 * time.Millisecond}},
		{name: "default backoff 1s then 2s",
			replies:   []reply{{status: 502}, {status: 500}, ok},
			wantCalls: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "at most two retries",
			replies: []reply{{status: 500, body: `{"error":"server_error"}`}},
			wantErr: true, wantStatus: 500, wantCalls: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "x-should-retry false",
			replies: []reply{{status: 429, header: map[string]string{"x-should-retry": "false", "retry-after": "1"}}, ok},
			wantErr: true, wantStatus: 429, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.replies...)
			var sleeps []time.Duration
			tok, err := testConfig(ts, &sleeps).Refresh(context.Background(), "ref-old")
			if tt.wantErr {
				var terr *TokenError
				require.ErrorAs(t, err, &terr)
				assert.Equal(t, tt.wantStatus, terr.Status)
			} else {
				require.NoError(t, err)
				assert.Equal(t, "acc-1", tok.AccessToken)
			}
			assert.Len(t, ts.requests(), tt.wantCalls)
			assert.Equal(t, tt.wantSleeps, sleeps)
		})
	}
}

func TestRetrySleepHonoursContext(t *testing.T) {
	ts := newTokenServer(t, reply{status: 503, header: map[string]string{"retry-after": "5"}})
	ctx, cancel := context.WithCancel(context.Background())
	cfg := testConfig(ts, new([]time.Duration))
	var slept []time.Duration
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		cancel()                         // the user gives up during the 5 s wait…
		return (&Config{}).sleep(ctx, d) // …and the real, context-aware sleep ends at once
	}
	_, err := cfg.Refresh(ctx, "ref-old")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	var terr *TokenError
	assert.ErrorAs(t, err, &terr)
	assert.Len(t, ts.requests(), 1)
	assert.Equal(t, []time.Duration{5 * time.Second}, slept)
}

func TestExpiresAtMs(t *testing.T) {
	tok := &Token{ExpiresIn: 28800}
	want := fixedNow.Add(8*time.Hour - 5*time.Minute).UnixMilli()
	assert.Equal(t, want, tok.ExpiresAtMs(fixedNow))
	assert.Equal(t, int64(1795885200000)+28800_000-300_000, tok.ExpiresAtMs(time.UnixMilli(1795885200000)))
}

func TestTokenStringMasks(t *testing.T) {
	acc := fakeTok("oat", strings.Repeat("a", 10)+"zzzz")
	s := (&Token{AccessToken: acc, RefreshToken: "short", ExpiresIn: 60}).String()
	assert.NotContains(t, s, acc)
	assert.Contains(t, s, "sk-ant-oat01-aa…zzzz")
}
