package pkce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// Environment of the re-executed test binary (see TestMain).
const (
	helperDirEnv = "PIAUTH_REFRESHER_HELPER_DIR"
	helperURLEnv = "PIAUTH_REFRESHER_HELPER_TOKEN_URL"
)

// TestMain doubles as a child process for the cross-process tests: with
// helperDirEnv set it runs one Refresher.AuthToken and prints the token.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		os.Exit(helperAuthToken(dir, os.Getenv(helperURLEnv)))
	}
	os.Exit(m.Run())
}

func helperAuthToken(dir, tokenURL string) int {
	store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	if err == nil {
		r := &pkce.Refresher{Store: store, OAuth: &pkce.Config{TokenEndpoint: tokenURL}, Warn: os.Stderr}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var c *keystore.Credential
		if c, err = r.AuthToken(ctx, false); err == nil {
			fmt.Println(c.Token())
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// fakeToken builds a token at run time so no literal looks like a real one.
func fakeToken(kind, seed string) string {
	return "sk-ant-" + kind + "01-" + strings.Repeat(seed, 48/len(seed)+1)[:48]
}

// faults sits in front of the emulator and answers the first token endpoint
// requests with the given statuses (headers in hdr), then forwards.
type faults struct {
	next     http.Handler
	hdr      http.Header
	mu       sync.Mutex
	statuses []int
	tokenReq int
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/oauth/token" {
		f.mu.Lock()
		f.tokenReq++
		var status int
		if len(f.statuses) > 0 {
			status, f.statuses = f.statuses[0], f.statuses[1:]
		}
		f.mu.Unlock()
		if status != 0 {
			for k, v := range f.hdr {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, `{"error":{"type":"overloaded_error","message":"try later"}}`)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

type env struct {
	emu   *emulator.Emulator
	url   string
	dir   string
	store *keystore.Store
	warn  *strings.Builder
	r     *pkce.Refresher
}

func newEnv(t *testing.T, f *faults) *env {
	t.Helper()
	emu := emulator.New(emulator.Options{})
	var h http.Handler = emu
	if f != nil {
		f.next = emu
		h = f
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	warn := &strings.Builder{}
	cfg := &pkce.Config{TokenEndpoint: srv.URL + "/v1/oauth/token", HTTP: srv.Client(),
		Sleep: func(context.Context, time.Duration) error { return nil }}
	return &env{emu: emu, url: srv.URL, dir: dir, store: store, warn: warn,
		r: &pkce.Refresher{Store: store, OAuth: cfg, Warn: warn}}
}

// writeAuth writes auth.json as pi would, with another provider beside ours.
func (e *env) writeAuth(t *testing.T, anthropic map[string]any) {
	t.Helper()
	doc := map[string]any{"openai-codex": map[string]any{"type": "oauth", "access": "codex-access", "refresh": "codex-refresh", "expires": 1}}
	if anthropic != nil {
		doc["anthropic"] = anthropic
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, keystore.AuthFileName), b, 0o600))
}

func (e *env) seedPool(t *testing.T, keys []string, states []keystore.KeyState) {
	t.Helper()
	_, err := e.store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for i, k := range keys {
			p.Add(k, states[i])
		}
		return nil
	})
	require.NoError(t, err)
}

func (e *env) auth(t *testing.T) *keystore.Credential {
	t.Helper()
	c, err := e.store.Auth()
	require.NoError(t, err)
	return c
}

func (e *env) pool(t *testing.T) *keystore.Pool {
	t.Helper()
	p, err := e.store.Pool()
	require.NoError(t, err)
	return p
}

func past() int64   { return time.Now().Add(-time.Minute).UnixMilli() }
func future() int64 { return time.Now().Add(time.Hour).UnixMilli() }

func oauthEntry(access, refresh string, expires int64) map[string]any {
	return map[string]any{"type": "oauth", "access": access, "refresh": refresh, "expires": expires}
}

func TestAuthToken(t *testing.T) {
	access, refresh := fakeToken("oat", "a1"), fakeToken("ort", "r1")
	tests := []struct {
		name       string
		entry      map[string]any // nil: no anthropic entry
		faults     *faults
		force      bool
		wantErr    []error
		refreshed  bool   // a new token was minted and stored
		wantWarn   string // substring of the warnings
		tokenCalls int    // token endpoint requests seen by faults
	}{
		{name: "valid token is not refreshed", entry: oauthEntry(access, refresh, future())},
		{name: "expired token is refreshed", entry: oauthEntry(access, refresh, past()), refreshed: true},
		{name: "force refreshes a valid token", entry: oauthEntry(access, refresh, future()), force: true, refreshed: true},
		{name: "not logged in", wantErr: []error{pkce.ErrNotLoggedIn}},
		{name: "api key is returned as is", entry: map[string]any{"type": "api_key", "key": fakeToken("api", "k1")}, force: true},
		{name: "invalid_grant needs a new login and keeps the credential",
			entry:   oauthEntry(access, fakeToken("ort", "invalid"), past()),
			wantErr: []error{pkce.ErrNeedsLogin, pkce.ErrInvalidGrant}},
		{name: "expired without refresh token needs a new login",
			entry: oauthEntry(access, "", past()), wantErr: []error{pkce.ErrNeedsLogin}},
		{name: "failed refresh of a valid token keeps it and warns",
			entry:    oauthEntry(access, refresh, future()),
			faults:   &faults{statuses: []int{503}, hdr: http.Header{"X-Should-Retry": {"false"}}},
			force:    true,
			wantWarn: "could not refresh the login", tokenCalls: 1},
		{name: "failed refresh of an expired token fails",
			entry:   oauthEntry(access, refresh, past()),
			faults:  &faults{statuses: []int{503, 503, 503}},
			wantErr: []error{}, tokenCalls: 3},
		{name: "token endpoint 429 then OK",
			entry:  oauthEntry(access, refresh, past()),
			faults: &faults{statuses: []int{429}, hdr: http.Header{"Retry-After": {"0"}}}, refreshed: true, tokenCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.faults)
			e.writeAuth(t, tt.entry)
			before, _ := os.ReadFile(filepath.Join(e.dir, keystore.AuthFileName))

			c, err := e.r.AuthToken(context.Background(), tt.force)

			after, _ := os.ReadFile(filepath.Join(e.dir, keystore.AuthFileName))
			assert.Contains(t, string(after), "codex-refresh", "other providers are kept")
			if tt.faults != nil {
				assert.Equal(t, tt.tokenCalls, tt.faults.tokenReq)
			}
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					assert.ErrorIs(t, err, want)
				}
				assert.NotContains(t, err.Error(), refresh)
				assert.Equal(t, string(before), string(after), "a failed refresh never changes or deletes the credential")
				return
			}
			require.NoError(t, err)
			stored := e.auth(t)
			assert.Equal(t, stored.Token(), c.Token())
			if tt.refreshed {
				assert.NotEqual(t, access, c.Access)
				assert.True(t, strings.HasPrefix(c.Access, "sk-ant-oat01-"))
				assert.NotEqual(t, refresh, stored.Refresh, "the rotated refresh token is stored")
				assert.False(t, stored.Expired(time.Now()))
				assert.JSONEq(t, `"user1@example.com"`, string(stored.Field(pkce.AccountField)))
				assert.EqualValues(t, 1, e.emu.Stats().Refreshes)
			} else {
				assert.Equal(t, string(before), string(after))
				assert.Zero(t, e.emu.Stats().Refreshes)
			}
			if tt.wantWarn != "" {
				assert.Contains(t, e.warn.String(), tt.wantWarn)
				assert.NotContains(t, e.warn.String(), access)
			} else {
				assert.Empty(t, e.warn.String())
			}
		})
	}
}

// A pooled account that is also auth.json's is refreshed once and both copies
// are written: refreshing the other copy with the old refresh token would be
// invalid_grant at the emulator.
func TestLinkedAccountRefreshedOnce(t *testing.T) {
	access, refresh := fakeToken("oat", "b2"), fakeToken("ort", "b2")
	other := fakeToken("oat", "c3")
	tests := []struct {
		name  string
		state keystore.KeyState // state of the pooled copy
		first string            // "auth" or "pool": which copy is refreshed first
	}{
		{name: "linked by refresh token, auth first", state: keystore.KeyState{Refresh: refresh, Expires: past()}, first: "auth"},
		{name: "linked by refresh token, pool first", state: keystore.KeyState{Refresh: refresh, Expires: past()}, first: "pool"},
		{name: "seed-pooled access token gains the refresh token", state: keystore.KeyState{}, first: "auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, nil)
			e.writeAuth(t, oauthEntry(access, refresh, past()))
			e.seedPool(t, []string{other, access}, []keystore.KeyState{{Label: "other"}, tt.state})

			var got string
			if tt.first == "auth" {
				c, err := e.r.AuthToken(ctx, false)
				require.NoError(t, err)
				got = c.Access
			} else {
				tok, err := e.r.PoolToken(ctx, keystore.Fingerprint(access), false)
				require.NoError(t, err)
				got = tok
			}

			auth, pool := e.auth(t), e.pool(t)
			require.Len(t, pool.Keys, 2)
			assert.Equal(t, other, pool.Keys[0])
			assert.Equal(t, got, auth.Access)
			assert.Equal(t, got, pool.Keys[1], "the pooled copy is replaced in place")
			st := pool.State(1)
			assert.Equal(t, auth.Refresh, st.Refresh)
			assert.Equal(t, auth.Expires, st.Expires)
			assert.Equal(t, "user1@example.com", st.Account)

			// The other copy is now fresh: no second refresh.
			c, err := e.r.AuthToken(ctx, false)
			require.NoError(t, err)
			assert.Equal(t, got, c.Access)
			tok, err := e.r.PoolToken(ctx, keystore.Fingerprint(got), false)
			require.NoError(t, err)
			assert.Equal(t, got, tok)
			stats := e.emu.Stats()
			assert.EqualValues(t, 1, stats.Refreshes)
			assert.Zero(t, stats.RejectedRefreshes)
		})
	}
}

func TestPoolToken(t *testing.T) {
	apiKey := fakeToken("api", "d4")
	oat, ort := fakeToken("oat", "e5"), fakeToken("ort", "e5")
	tests := []struct {
		name      string
		state     keystore.KeyState
		key       string
		fp        string // default: the key's fingerprint
		force     bool
		wantErr   []error
		refreshed bool
		reauth    bool // the key ends marked NeedsReauth
		rejected  int64
	}{
		{name: "api key", key: apiKey},
		{name: "api key cannot be forced", key: apiKey, force: true, wantErr: []error{pkce.ErrCannotRefresh}},
		{name: "valid oauth key", key: oat, state: keystore.KeyState{Refresh: ort, Expires: future()}},
		{name: "unknown expiry is trusted", key: oat},
		{name: "expired key is refreshed", key: oat, state: keystore.KeyState{Refresh: ort, Expires: past()}, refreshed: true},
		{name: "forced refresh", key: oat, state: keystore.KeyState{Refresh: ort, Expires: future()}, force: true, refreshed: true},
		{name: "expired without refresh token", key: oat, state: keystore.KeyState{Expires: past()}, wantErr: []error{pkce.ErrCannotRefresh}},
		{name: "forced without refresh token", key: oat, force: true, wantErr: []error{pkce.ErrCannotRefresh}},
		{name: "revoked refresh token marks needs-reauth", key: oat,
			state:   keystore.KeyState{Refresh: fakeToken("ort", "invalid"), Expires: past()},
			wantErr: []error{pkce.ErrNeedsLogin, pkce.ErrInvalidGrant}, reauth: true, rejected: 1},
		{name: "needs-reauth key is not refreshed again", key: oat,
			state:   keystore.KeyState{Refresh: ort, Expires: past(), NeedsReauth: true},
			wantErr: []error{pkce.ErrNeedsLogin}, reauth: true},
		{name: "unknown key", key: oat, fp: "0123456789ab", wantErr: []error{keystore.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.writeAuth(t, oauthEntry(fakeToken("oat", "zz"), fakeToken("ort", "zz"), future()))
			authBefore := e.auth(t)
			e.seedPool(t, []string{fakeToken("oat", "f6"), tt.key}, []keystore.KeyState{{}, tt.state})
			fp := tt.fp
			if fp == "" {
				fp = keystore.Fingerprint(tt.key)
			}

			tok, err := e.r.PoolToken(context.Background(), fp, tt.force)

			pool := e.pool(t)
			st := pool.State(1)
			assert.Equal(t, tt.reauth, st.NeedsReauth)
			assert.EqualValues(t, tt.rejected, e.emu.Stats().RejectedRefreshes)
			assert.Equal(t, authBefore.Access, e.auth(t).Access, "auth.json's other account is untouched")
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					assert.ErrorIs(t, err, want)
				}
				assert.NotContains(t, err.Error(), tt.key)
				assert.Equal(t, tt.key, pool.Keys[1], "the key is kept")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, pool.Keys[1], tok)
			if tt.refreshed {
				assert.NotEqual(t, tt.key, tok)
				assert.NotEqual(t, ort, st.Refresh)
				assert.Greater(t, st.Expires, time.Now().UnixMilli())
				assert.EqualValues(t, 1, e.emu.Stats().Refreshes)
			} else {
				assert.Equal(t, tt.key, tok)
				assert.Zero(t, e.emu.Stats().Refreshes)
			}
		})
	}
}

// Refreshers on separate Stores (as separate processes would have) share one
// refresh of an expired pooled key; the waiters follow the replaced key.
func TestPoolTokenSingleFlight(t *testing.T) {
	e := newEnv(t, nil)
	oat := fakeToken("oat", "g7")
	e.seedPool(t, []string{fakeToken("oat", "h8"), oat}, []keystore.KeyState{{}, {Refresh: fakeToken("ort", "g7"), Expires: past()}})

	const n = 8
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			store, err := keystore.Open(keystore.Options{Dir: e.dir, Mode: keystore.ModeOff})
			if err != nil {
				errs[i] = err
				return
			}
			r := &pkce.Refresher{Store: store, OAuth: e.r.OAuth}
			toks[i], errs[i] = r.PoolToken(context.Background(), keystore.Fingerprint(oat), false)
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, e.pool(t).Keys[1], toks[i])
	}
	// A caller still holding the old fingerprint is led to the new key.
	tok, err := e.r.PoolToken(context.Background(), keystore.Fingerprint(oat), false)
	require.NoError(t, err)
	assert.Equal(t, e.pool(t).Keys[1], tok)
	assert.EqualValues(t, 1, e.emu.Stats().Refreshes)
	assert.Zero(t, e.emu.Stats().RejectedRefreshes)
}

// 16 processes find the same expired credential: exactly one refresh reaches
// the token endpoint and every process prints the same new token.
func TestAuthTokenSingleFlightAcrossProcesses(t *testing.T) {
	e := newEnv(t, nil)
	access := fakeToken("oat", "i9")
	e.writeAuth(t, oauthEntry(access, fakeToken("ort", "i9"), past()))

	const n = 16
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperDirEnv+"="+e.dir, helperURLEnv+"="+e.url+"/v1/oauth/token")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = fmt.Errorf("%w: %s", err, stderr.String())
			}
		})
	}
	wg.Wait()
	stored := e.auth(t)
	require.NotEqual(t, access, stored.Access)
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, stored.Access+"\n", outs[i])
	}
	assert.EqualValues(t, 1, e.emu.Stats().Refreshes)
	assert.Zero(t, e.emu.Stats().RejectedRefreshes)
	assert.NoDirExists(t, filepath.Join(e.dir, keystore.AuthFileName+".lock"))
	_, err := os.Stat(filepath.Join(e.dir, keystore.PoolFileName+".lock"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}
