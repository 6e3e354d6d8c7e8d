package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// loginHarness runs loginRun against the emulator with a scripted browser.
type loginHarness struct {
	env          *authEnv
	stdin        *io.PipeReader
	paste        *io.PipeWriter
	stdout       bytes.Buffer
	stderr       testenv.Buffer
	callbackBody string // last page served by the callback server
}

func newLoginHarness(t *testing.T, env *authEnv) *loginHarness {
	h := &loginHarness{env: env}
	h.stdin, h.paste = io.Pipe()
	t.Cleanup(func() { h.paste.Close() })
	return h
}

func (h *loginHarness) login(t *testing.T, browser func(string) error, mod func(*loginOptions)) error {
	t.Helper()
	store := h.env.store(t)
	opts := &loginOptions{
		IO:    &IOStreams{In: h.stdin, Out: &h.stdout, ErrOut: &h.stderr},
		Store: store,
		OAuth: &pkce.Config{
			AuthorizeEndpoint: h.env.url + "/oauth/authorize",
			TokenEndpoint:     h.env.url + "/v1/oauth/token",
		},
		Browser: browser,
		Now:     time.Now,
		Timeout: time.Minute,
		Port:    0,
	}
	if mod != nil {
		mod(opts)
	}
	return loginRun(context.Background(), opts)
}

// follow is a browser that follows the authorize redirect to the callback.
func (h *loginHarness) follow(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	h.callbackBody = string(b)
	return nil
}

var codePage = regexp.MustCompile(`<pre id="code">([^#<]+)#([^<]+)</pre>`)

// paster is a browser for the paste flow: it opens the authorize URL (whose
// page shows code#state) and pastes each line built by forms on stdin.
func (h *loginHarness) paster(t *testing.T, forms ...func(code, state string) string) func(string) error {
	return func(u string) error {
		resp, err := http.Get(u)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := codePage.FindStringSubmatch(string(b))
		if m == nil {
			return fmt.Errorf("no code on the page: %s", b)
		}
		go func() {
			for _, form := range forms {
				if _, err := fmt.Fprintln(h.paste, form(m[1], m[2])); err != nil {
					return
				}
			}
			h.paste.Close() // end of input
		}()
		return nil
	}
}

// Paste forms the login accepts (and some it refuses).
var (
	pasteURL = func(c, s string) string {
		return pkce.ManualRedirectURI + "?" + url.Values{"code": {c}, "state": {s}}.Encode()
	}
	pasteHash     = func(c, s string) string { return c + "#" + s }
	pasteQuery    = func(c, s string) string { return "code=" + c + "&state=" + s }
	pasteQMark    = func(c, s string) string { return "?code=" + c + "&state=" + s }
	pasteGarbage  = func(string, string) string { return "not a code" }
	pasteBadState = func(c, _ string) string { return c + "#someone-elses-state" }
)

func TestLoginFlows(t *testing.T) {
	tests := []struct {
		name       string
		manual     bool
		busyPort   bool
		paste      []func(code, state string) string // nil: the browser follows the callback
		provider   string                            // error=… the provider answers the callback with
		wantErr    error
		wantStderr []string
	}{
		{name: "browser callback", wantStderr: []string{"Open this URL", "Logged in as user1@example.com"}},
		{name: "paste callback URL", manual: true, paste: []func(string, string) string{pasteURL}},
		{name: "paste code#state", manual: true, paste: []func(string, string) string{pasteHash}},
		{name: "paste query string", manual: true, paste: []func(string, string) string{pasteQuery}},
		{name: "paste ?query string", manual: true, paste: []func(string, string) string{pasteQMark}},
		{name: "bad paste is reported and the wait goes on", manual: true,
			paste: []func(string, string) string{pasteGarbage, pasteHash}, wantStderr: []string{"✗", "Try again"}},
		{name: "state mismatch", manual: true, paste: []func(string, string) string{pasteBadState},
			wantErr: pkce.ErrNoCode, wantStderr: []string{"state mismatch"}},
		{name: "busy port falls back to paste", busyPort: true, paste: []func(string, string) string{pasteHash},
			wantStderr: []string{"falling back to pasting the code", "Logged in as user1@example.com"}},
		{name: "provider error with markup", provider: "<script>alert(1)</script>", wantErr: pkce.ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.writeAuth(t, nil)
			h := newLoginHarness(t, env)
			browser := h.follow
			switch {
			case tt.paste != nil:
				browser = h.paster(t, tt.paste...)
			case tt.provider != "":
				browser = func(u string) error {
					q := mustQuery(t, u)
					cb := q.Get("redirect_uri") + "?" + url.Values{"error": {"access_denied"},
						"error_description": {tt.provider}, "state": {q.Get("state")}}.Encode()
					return h.follow(cb)
				}
			}
			port := 0
			if tt.busyPort {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				defer ln.Close()
				port = ln.Addr().(*net.TCPAddr).Port
			}

			err := h.login(t, browser, func(o *loginOptions) { o.Manual, o.Port = tt.manual, port })

			stderr := h.stderr.String()
			for _, want := range tt.wantStderr {
				assert.Contains(t, stderr, want)
			}
			assert.Empty(t, h.stdout.String(), "login prints nothing on stdout")
			doc := env.readAuthDoc(t)
			assert.Contains(t, doc, "openai-codex", "other providers are kept")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, exitError, exitCode(err))
				assert.NotContains(t, doc, "anthropic", "nothing stored")
				if tt.provider != "" {
					assert.Contains(t, err.Error(), "access_denied")
					assert.NotContains(t, h.callbackBody, tt.provider, "the failure page escapes the provider's text")
				}
				return
			}
			require.NoError(t, err, stderr)
			c := env.auth(t)
			assert.Equal(t, "oauth", c.Type)
			assert.True(t, env.usable(t, c.Access), "the stored token works")
			assert.NotEmpty(t, c.Refresh)
			assert.Greater(t, c.Expires, time.Now().Add(7*time.Hour).UnixMilli())
			assert.JSONEq(t, `"user1@example.com"`, string(c.Field(pkce.AccountField)))
			assert.Contains(t, stderr, "Logged in as user1@example.com")
			assertNoToken(t, []string{c.Access, c.Refresh}, stderr)
		})
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	return parsed.Query()
}

func TestLoginAddToPool(t *testing.T) {
	other := authToken("oat", "other")
	old := authToken("oat", "old")
	cooling := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name      string
		seed      []keystore.KeyState // states of the seeded keys other, old
		label     string
		wantIndex int
		wantLabel string
		wantNote  string
		wantKeys  int
	}{
		{name: "new account is appended", seed: []keystore.KeyState{{Label: "other"}}, label: "work",
			wantIndex: 1, wantLabel: "work", wantNote: "Added to the key pool as key 2/2", wantKeys: 2},
		{name: "pooled account is replaced in place", label: "",
			seed: []keystore.KeyState{{Label: "other"}, {Label: "mine", Account: "USER1@example.com",
				NeedsReauth: true, CooldownUntil: cooling, CooldownReason: "rate_limit"}},
			wantIndex: 1, wantLabel: "mine", wantNote: "Key 2/2 (user1@example.com) was already pooled; replaced its token", wantKeys: 2},
		{name: "a disabled account's new login brings it back", label: "",
			seed:      []keystore.KeyState{{Label: "other"}, {Label: "mine", Account: "user1@example.com", Disabled: true}},
			wantIndex: 1, wantLabel: "mine", wantNote: "was already pooled; replaced its token", wantKeys: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.seedPool(t, 0, false, []string{other, old}[:len(tt.seed)], tt.seed)
			h := newLoginHarness(t, env)

			err := h.login(t, h.follow, func(o *loginOptions) { o.AddToPool, o.Label = true, tt.label })
			require.NoError(t, err, h.stderr.String())

			assert.Contains(t, h.stderr.String(), tt.wantNote)
			c, p := env.auth(t), env.pool(t)
			require.Len(t, p.Keys, tt.wantKeys)
			assert.Equal(t, other, p.Keys[0])
			assert.Equal(t, c.Access, p.Keys[tt.wantIndex], "the pooled copy is the login's token")
			st := p.State(tt.wantIndex)
			assert.Equal(t, c.Refresh, st.Refresh)
			assert.Equal(t, c.Expires, st.Expires)
			assert.Equal(t, "user1@example.com", st.Account)
			assert.Equal(t, tt.wantLabel, st.Label)
			assert.False(t, st.NeedsReauth)
			assert.False(t, st.Disabled)
			if len(tt.seed) > 1 && tt.seed[1].CooldownUntil.IsZero() {
				assert.True(t, p.Status(tt.wantIndex, time.Now()).State.Usable(), "usable again after the new login")
			}
			if len(tt.seed) > 1 && !tt.seed[1].CooldownUntil.IsZero() {
				assert.True(t, cooling.Equal(st.CooldownUntil), "rate limits are per account: the cooldown stays")
			}
			assertNoToken(t, []string{c.Access, c.Refresh}, h.stderr.String())
		})
	}
}

// A running pi holds auth.json.lock: login and logout wait for it and then
// merge, keeping pi's other provider.
func TestLoginLogoutWaitForPiLock(t *testing.T) {
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "pi"), authToken("ort", "pi"), time.Now().Add(time.Hour)))

	untouched := holdPiLock(t, env.dir, 300*time.Millisecond)
	h := newLoginHarness(t, env)
	require.NoError(t, h.login(t, h.follow, nil))
	assert.True(t, <-untouched, "login wrote auth.json while pi held the lock")
	doc := env.readAuthDoc(t)
	assert.Contains(t, doc, "openai-codex")
	assert.NotContains(t, string(doc["anthropic"]), authToken("oat", "pi"))

	untouched = holdPiLock(t, env.dir, 300*time.Millisecond)
	r := env.run(t, "", "logout")
	require.Equal(t, 0, r.code, r.err)
	assert.True(t, <-untouched, "logout wrote auth.json while pi held the lock")
	doc = env.readAuthDoc(t)
	assert.Contains(t, doc, "openai-codex")
	assert.NotContains(t, doc, "anthropic")
	assert.Contains(t, r.err, "Logged out")
	assert.Empty(t, r.out)
}

func TestLogout(t *testing.T) {
	access := authToken("oat", "lo")
	tests := []struct {
		name     string
		auth     map[string]any // nil: logged out
		pooled   bool
		wantErr  []string
		wantAuth bool
	}{
		{name: "removes only the anthropic entry", auth: oauthCred(access, authToken("ort", "lo"), time.Now()),
			wantErr: []string{"Logged out", keystore.Mask(access)}},
		{name: "mentions the pooled copy", auth: oauthCred(access, authToken("ort", "lo"), time.Now()), pooled: true,
			wantErr: []string{"Logged out", "stays in the key pool as key 1/1"}},
		{name: "not logged in is not an error", wantErr: []string{"Not logged in; nothing to do"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.writeAuth(t, tt.auth)
			if tt.pooled {
				env.seedPool(t, 0, false, []string{access}, []keystore.KeyState{{}})
			}
			r := env.run(t, "", "logout")
			require.Equal(t, 0, r.code, r.err)
			for _, want := range tt.wantErr {
				assert.Contains(t, r.err, want)
			}
			assert.Empty(t, r.out)
			assertNoToken(t, []string{access}, r.err)
			doc := env.readAuthDoc(t)
			assert.Contains(t, doc, "openai-codex")
			assert.NotContains(t, doc, "anthropic")
			if tt.pooled {
				assert.Equal(t, []string{access}, env.pool(t).Keys, "the pool is untouched")
			}
		})
	}
}

// The real binary, as the demo runs it: --no-browser prints the authorize URL
// on stderr; a "browser" (here an HTTP client) follows it to the callback.
func TestLoginProcess(t *testing.T) {
	env := newAuthEnv(t)
	cmd := exec.Command(piauthBinary(t), "--dir", env.dir, "--keyring", "off", "login", "--no-browser", "--port", "0")
	cmd.Env = os.Environ()
	for k, v := range env.vars() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()

	var all strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		all.WriteString(line + "\n")
		if strings.HasPrefix(line, env.url+"/oauth/authorize?") {
			resp, err := http.Get(line)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
	}
	require.NoError(t, cmd.Wait(), all.String())
	assert.Contains(t, all.String(), "Logged in as user1@example.com")
	assert.Empty(t, stdout.String())
	c := env.auth(t)
	assert.True(t, env.usable(t, c.Access))
	assertNoToken(t, []string{c.Access, c.Refresh}, all.String())

	var st statusJSON
	r := env.run(t, "", "status", "--json")
	require.Equal(t, 0, r.code, r.err)
	require.NoError(t, json.Unmarshal([]byte(r.out), &st))
	assert.True(t, st.LoggedIn)
	assert.Equal(t, "user1@example.com", st.Auth.Account)
}
