package pkce

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A 2xx answer the client finds odd still yields every token it holds: the
// server has already rotated the refresh token when it answers.
func TestTokenResponseLenient(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantAccess  string
		wantRefresh string
		wantExpires int
		wantAccount *Account
	}{
		{name: "float expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":28800.5}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: 28801},
		{name: "string expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":"28800"}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: 28800},
		{name: "garbage expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":"soon"}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: DefaultExpiresIn},
		{name: "missing expires_in", body: `{"access_token":"acc","refresh_token":"ref"}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: DefaultExpiresIn},
		{name: "negative expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":-9999999999}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: DefaultExpiresIn},
		{name: "tiny expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":3}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: MinExpiresIn},
		{name: "absurd expires_in", body: `{"access_token":"acc","refresh_token":"ref","expires_in":1e300}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: MaxExpiresIn},
		{name: "null fields and odd account", body: `{"access_token":"acc","refresh_token":null,"expires_in":null,"account":"me"}`,
			wantAccess: "acc", wantRefresh: "ref-old", wantExpires: DefaultExpiresIn},
		{name: "account with wrong-typed uuid", body: `{"access_token":"acc","refresh_token":"ref","expires_in":100,"account":{"uuid":7,"email_address":"me@example.com"}}`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: 100, wantAccount: &Account{Email: "me@example.com"}},
		{name: "truncated body", body: `{"access_token":"acc","refresh_token":"ref","expires_in":28800,"account":{"uu`,
			wantAccess: "acc", wantRefresh: "ref", wantExpires: 28800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, reply{status: 200, body: tt.body})
			tok, err := testConfig(ts, new([]time.Duration)).Refresh(context.Background(), "ref-old")
			require.NoError(t, err)
			assert.Equal(t, tt.wantAccess, tok.AccessToken)
			assert.Equal(t, tt.wantRefresh, tok.RefreshToken)
			assert.Equal(t, tt.wantExpires, tok.ExpiresIn)
			assert.Equal(t, tt.wantAccount, tok.Account)
			exp := tok.ExpiresAtMs(fixedNow)
			assert.Greater(t, exp, fixedNow.UnixMilli(), "a fresh token is never stored as expired")
			assert.LessOrEqual(t, exp, fixedNow.Add(MaxExpiresIn*time.Second).UnixMilli())
			assert.Len(t, ts.requests(), 1)
		})
	}
}

func TestExpiresAtMsBounds(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want time.Duration
	}{
		{name: "8 hours", in: 28800, want: 8*time.Hour - 5*time.Minute},
		{name: "zero is unknown", in: 0, want: time.Hour - 5*time.Minute},
		{name: "negative is unknown", in: -1 << 62, want: time.Hour - 5*time.Minute},
		{name: "one minute keeps half", in: 60, want: 30 * time.Second},
		{name: "below the minimum", in: 1, want: 30 * time.Second},
		{name: "huge is capped", in: 1 << 62, want: MaxExpiresIn*time.Second - 5*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&Token{ExpiresIn: tt.in}).ExpiresAtMs(fixedNow)
			assert.Equal(t, fixedNow.Add(tt.want).UnixMilli(), got)
			assert.Equal(t, 2026, time.UnixMilli(got).UTC().Year(), "never 'expired in 1759'")
		})
	}
}

// A 2xx answer with a new refresh token but no access token: one more refresh
// with the new token; if that fails too, the newest refresh token comes back.
func TestRefreshIncompleteAnswer(t *testing.T) {
	incomplete := reply{status: 200, body: `{"refresh_token":"ref-new","expires_in":"n/a"}`}
	tests := []struct {
		name        string
		replies     []reply
		wantErr     bool
		wantAccess  string
		wantRefresh string
		wantSent    []string
	}{
		{name: "completed by a second refresh", replies: []reply{incomplete, {status: 200, body: okBody}},
			wantAccess: "acc-1", wantRefresh: "ref-2", wantSent: []string{"ref-old", "ref-new"}},
		{name: "second refresh fails: new refresh token kept", replies: []reply{incomplete, {status: 400, body: `{"error":"invalid_request"}`}},
			wantErr: true, wantRefresh: "ref-new", wantSent: []string{"ref-old", "ref-new"}},
		{name: "nothing usable", replies: []reply{{status: 200, body: `{"token_type":"Bearer"}`}},
			wantErr: true, wantSent: []string{"ref-old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.replies...)
			tok, err := testConfig(ts, new([]time.Duration)).Refresh(context.Background(), "ref-old")
			if tt.wantErr {
				require.ErrorIs(t, err, ErrIncompleteToken)
			} else {
				require.NoError(t, err)
			}
			if tt.wantRefresh == "" {
				assert.Nil(t, tok, "nothing to keep")
			} else {
				require.NotNil(t, tok)
				assert.Equal(t, tt.wantAccess, tok.AccessToken)
				assert.Equal(t, tt.wantRefresh, tok.RefreshToken)
			}
			var sent []string
			for _, b := range ts.requests() {
				for _, r := range []string{"ref-old", "ref-new"} {
					if strings.Contains(b, `"refresh_token":"`+r+`"`) {
						sent = append(sent, r)
					}
				}
			}
			assert.Equal(t, tt.wantSent, sent)
		})
	}
}

func TestExchangeIncompleteAnswer(t *testing.T) {
	ts := newTokenServer(t, reply{status: 200, body: `{"refresh_token":"ref-new"}`}, reply{status: 200, body: okBody})
	tok, err := testConfig(ts, new([]time.Duration)).Exchange(context.Background(), "c", "s", "v", "http://localhost:1/callback")
	require.NoError(t, err)
	assert.Equal(t, "acc-1", tok.AccessToken)
	reqs := ts.requests()
	require.Len(t, reqs, 2)
	assert.Contains(t, reqs[1], `"grant_type":"refresh_token"`)
	assert.Contains(t, reqs[1], `"refresh_token":"ref-new"`)
}

// No redirect of the token endpoint is followed, whatever the caller's client
// says: the body holds a code or a refresh token.
func TestTokenEndpointRefusesRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, okBody)
	}))
	t.Cleanup(other.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, op := range []string{"exchange", "refresh"} {
			t.Run(fmt.Sprintf("%d %s", status, op), func(t *testing.T) {
				ts := newTokenServer(t, reply{status: status, header: map[string]string{"Location": other.URL + "/steal"}})
				cfg := testConfig(ts, new([]time.Duration))
				cfg.HTTP = &http.Client{} // a client that would follow redirects
				var err error
				if op == "exchange" {
					_, err = cfg.Exchange(context.Background(), "the-code", "s", "v", "r")
				} else {
					_, err = cfg.Refresh(context.Background(), "ref-old")
				}
				require.ErrorIs(t, err, ErrRedirect)
				assert.Contains(t, err.Error(), other.URL+"/steal")
				assert.Contains(t, err.Error(), ts.URL)
				assert.Len(t, ts.requests(), 1, "not retried")
				assert.Zero(t, elsewhere.Load(), "nothing reached the redirect target")
			})
		}
	}
}

// silentServer accepts connections, reads what comes and never answers
// (headersThenStall: sends the headers of a 200 and then stalls the body).
func silentServer(t *testing.T, headersThenStall bool) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				if headersThenStall {
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
				}
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

type passThrough struct{ rt http.RoundTripper }

func (p passThrough) RoundTrip(r *http.Request) (*http.Response, error) { return p.rt.RoundTrip(r) }

// A token endpoint that accepts and never answers ends the request within the
// limits, and the error names the URL.
func TestTokenEndpointNoAnswer(t *testing.T) {
	tests := []struct {
		name      string
		scheme    string
		stallBody bool
		client    *http.Client
		wantPhase string
	}{
		{name: "no answer, default client", scheme: "http", wantPhase: "waiting for the answer"},
		{name: "no answer, caller's client without timeouts", scheme: "http", client: &http.Client{}, wantPhase: "waiting for the answer"},
		{name: "no answer, custom transport", scheme: "http", client: &http.Client{Transport: passThrough{http.DefaultTransport}}, wantPhase: "waiting for the answer"},
		{name: "headers then a stalled body", scheme: "http", stallBody: true, wantPhase: "waiting for the answer"},
		{name: "TLS handshake never answered", scheme: "https", wantPhase: "connecting"},
	}
	for _, tt := range tests {
		for _, op := range []string{"exchange", "refresh"} {
			t.Run(tt.name+" "+op, func(t *testing.T) {
				url := tt.scheme + "://" + silentServer(t, tt.stallBody) + "/v1/oauth/token"
				cfg := &Config{TokenEndpoint: url, HTTP: tt.client, ConnectTimeout: 200 * time.Millisecond, ResponseTimeout: 300 * time.Millisecond}
				start := time.Now()
				var err error
				if op == "exchange" {
					_, err = cfg.Exchange(context.Background(), "c", "s", "v", "r")
				} else {
					_, err = cfg.Refresh(context.Background(), "ref-old")
				}
				elapsed := time.Since(start)
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrNoAnswer)
				assert.Contains(t, err.Error(), url)
				assert.Contains(t, err.Error(), tt.wantPhase)
				assert.Less(t, elapsed, 3*time.Second)
			})
		}
	}
}

func TestConfigTimeoutDefaults(t *testing.T) {
	var c *Config
	assert.Equal(t, 10*time.Second, c.connectTimeout())
	assert.Equal(t, 30*time.Second, c.responseTimeout())
	c = &Config{ConnectTimeout: time.Second, ResponseTimeout: 2 * time.Second}
	assert.Equal(t, time.Second, c.connectTimeout())
	assert.Equal(t, 2*time.Second, c.responseTimeout())
	tr := c.httpClient().Transport.(*http.Transport)
	assert.Equal(t, 2*time.Second, tr.ResponseHeaderTimeout)
	assert.Equal(t, time.Second, tr.TLSHandshakeTimeout)
}
