package pkce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authServer is a tiny authorize endpoint: it checks the PKCE parameters, remembers them,
// and redirects to redirect_uri with a code (or with ?error=… when denyWith is set).
type authServer struct {
	*httptest.Server
	denyWith string
	mu       sync.Mutex
	got      url.Values
}

func newAuthServer(t *testing.T, denyWith string) *authServer {
	t.Helper()
	as := &authServer{denyWith: denyWith}
	as.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		as.mu.Lock()
		as.got = q
		as.mu.Unlock()
		if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "test-client" || q.Get("response_type") != "code" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		back := url.Values{"state": {q.Get("state")}}
		if as.denyWith != "" {
			back.Set("error", as.denyWith)
		} else {
			back.Set("code", "auth-code")
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
	}))
	t.Cleanup(as.Close)
	return as
}

func (as *authServer) params() url.Values {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.got
}

// followBrowser is a fake browser that loads the authorize URL and follows the redirect
// to the callback server; its final page goes to pages.
func followBrowser(pages chan<- string) func(string) error {
	return func(u string) error {
		go func() {
			resp, err := http.Get(u)
			if err != nil {
				pages <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			pages <- fmt.Sprintf("%d %s", resp.StatusCode, body)
		}()
		return nil
	}
}

// pasteBrowser is a fake user who reads the state off the authorize URL and pastes lines
// built from it; "{state}" in a line is replaced by the login's state.
func pasteBrowser(w io.Writer, lines ...string) func(string) error {
	return func(u string) error {
		parsed, err := url.Parse(u)
		if err != nil {
			return err
		}
		state := parsed.Query().Get("state")
		go func() {
			for _, l := range lines {
				if _, err := io.WriteString(w, strings.ReplaceAll(l, "{state}", state)+"\n"); err != nil {
					return
				}
			}
		}()
		return nil
	}
}

func TestLogin(t *testing.T) {
	type env struct {
		as    *authServer
		pages chan string
		pw    *io.PipeWriter
	}
	tests := []struct {
		name         string
		manual       bool
		busyPort     bool
		deny         string
		tokenReply   reply
		browser      func(e env) func(string) error
		wantRedirect string // "localhost" or ManualRedirectURI
		wantErr      error
		wantStatus   []string
		wantPage     string
	}{
		{
			name:         "browser follows redirect to callback",
			browser:      func(e env) func(string) error { return followBrowser(e.pages) },
			wantRedirect: "localhost",
			wantStatus:   []string{"Open this URL", "paste the code#state", spinnerFrames[0], "\r\033[K"},
			wantPage:     "return to the terminal",
		},
		{
			name:         "paste while the callback server is up uses the localhost redirect",
			browser:      func(e env) func(string) error { return pasteBrowser(e.pw, "auth-code#{state}") },
			wantRedirect: "localhost",
		},
		{
			name:   "manual paste: garbage and wrong state are reported, then the right one wins",
			manual: true,
			browser: func(e env) func(string) error {
				return pasteBrowser(e.pw, "what is this", "auth-code#not-the-state", "", "auth-code#{state}")
			},
			wantRedirect: ManualRedirectURI,
			wantStatus:   []string{"Paste the code shown", "characters a code never has", "another login attempt", "Try again"},
		},
		{
			name:     "busy port falls back to paste",
			busyPort: true,
			browser: func(e env) func(string) error {
				return pasteBrowser(e.pw, "http://localhost/x?code=auth-code&state={state}")
			},
			wantRedirect: ManualRedirectURI,
			wantStatus:   []string{"falling back to pasting", "callback port is busy"},
		},
		{
			name: "browser that fails to open still allows paste",
			browser: func(e env) func(string) error {
				paste := pasteBrowser(e.pw, "auth-code#{state}")
				return func(u string) error { _ = paste(u); return errors.New("no display") }
			},
			wantRedirect: "localhost",
			wantStatus:   []string{"Could not open a browser (no display)"},
		},
		{
			name:     "provider error ends the login",
			deny:     "access_denied",
			browser:  func(e env) func(string) error { return followBrowser(e.pages) },
			wantErr:  ErrAccessDenied,
			wantPage: "Login failed",
		},
		{
			name:         "invalid_grant from the token endpoint",
			tokenReply:   reply{status: 400, body: `{"error":"invalid_grant","error_description":"redirect_uri mismatch"}`},
			browser:      func(e env) func(string) error { return followBrowser(e.pages) },
			wantRedirect: "localhost",
			wantErr:      ErrInvalidGrant,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newAuthServer(t, tt.deny)
			rep := tt.tokenReply
			if rep.status == 0 {
				rep = reply{status: 200, body: okBody}
			}
			ts := newTokenServer(t, rep)
			pr, pw := io.Pipe()
			t.Cleanup(func() { _ = pw.Close() })
			e := env{as: as, pages: make(chan string, 1), pw: pw}
			port := 0
			if tt.busyPort {
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				require.NoError(t, err)
				t.Cleanup(func() { _ = ln.Close() })
				port = ln.Addr().(*net.TCPAddr).Port
			}
			status := &testenv.Buffer{}
			cfg := testConfig(ts, new([]time.Duration))
			cfg.AuthorizeEndpoint = as.URL + "/oauth/authorize"
			cfg.HTTP = nil // the default client; everything is on 127.0.0.1
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			var opened string // OpenBrowser runs inside Login, before it returns
			browser := tt.browser(e)
			tok, err := Login(ctx, LoginOptions{
				Config: cfg, Port: port, Manual: tt.manual,
				OpenBrowser: func(u string) error { opened = u; return browser(u) }, Prompt: pr, Status: status, Spinner: true,
			})

			for _, s := range tt.wantStatus {
				assert.Contains(t, status.String(), s)
			}
			if tt.wantPage != "" {
				assert.Contains(t, <-e.pages, tt.wantPage)
			}
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				if errors.Is(err, ErrAccessDenied) {
					assert.Empty(t, ts.requests(), "no exchange after a provider error")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "acc-1", tok.AccessToken)
			assert.Equal(t, "me@example.com", tok.Account.Email)
			assert.True(t, strings.HasSuffix(status.String(), "\r\033[K"), "spinner erased at the end")

			// The exchange used the code, the state and redirect URI of the authorize URL,
			// and the verifier matching its challenge.
			openedURL, err := url.Parse(opened)
			require.NoError(t, err)
			sent := openedURL.Query()
			assert.Equal(t, as.URL+"/oauth/authorize", openedURL.Scheme+"://"+openedURL.Host+openedURL.Path)
			if tt.wantPage != "" {
				assert.Equal(t, sent, as.params(), "the browser visited the authorize endpoint")
			}
			reqs := ts.requests()
			require.Len(t, reqs, 1)
			var body map[string]string
			require.NoError(t, json.Unmarshal([]byte(reqs[0]), &body))
			assert.Equal(t, "auth-code", body["code"])
			assert.Equal(t, sent.Get("state"), body["state"])
			assert.Equal(t, sent.Get("redirect_uri"), body["redirect_uri"])
			assert.Equal(t, sent.Get("code_challenge"), Challenge(body["code_verifier"]))
			assert.NotEqual(t, body["code_verifier"], body["state"])
			if tt.wantRedirect == "localhost" {
				assert.Regexp(t, `^http://localhost:\d+/callback$`, body["redirect_uri"])
			} else {
				assert.Equal(t, tt.wantRedirect, body["redirect_uri"])
			}
		})
	}
}

func TestLoginEndsWithoutCode(t *testing.T) {
	ts := newTokenServer(t, reply{status: 200, body: okBody})
	cfg := testConfig(ts, new([]time.Duration))
	tests := []struct {
		name    string
		opts    LoginOptions
		timeout time.Duration
		wantErr error
	}{
		{name: "manual without prompt", opts: LoginOptions{Config: cfg, Manual: true}, wantErr: ErrNoCode},
		{name: "manual and paste input closed", opts: LoginOptions{Config: cfg, Manual: true, Prompt: strings.NewReader("\n")}, wantErr: ErrNoCode},
		{name: "timeout waiting for the browser", opts: LoginOptions{Config: cfg, Prompt: strings.NewReader("")}, timeout: 50 * time.Millisecond, wantErr: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, err := Login(ctx, tt.opts)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.Empty(t, ts.requests())
		})
	}
}
