package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

func TestToken(t *testing.T) {
	access, refresh := authToken("oat", "tk"), authToken("ort", "tk")
	k1, k2, k3 := authToken("oat", "k1"), authToken("oat", "k2"), authToken("api", "k3")
	soon := time.Now().Add(time.Hour)
	tests := []struct {
		name      string
		auth      map[string]any
		keys      []string
		states    []keystore.KeyState
		active    int
		args      []string
		wantCode  int
		want      string // the printed token; "new" = a freshly minted one
		wantErr   string // substring of stderr
		refreshes int64
	}{
		{name: "valid login", auth: oauthCred(access, refresh, soon), want: access},
		{name: "expired login is refreshed", auth: oauthCred(access, refresh, time.Now().Add(-time.Minute)), want: "new", refreshes: 1},
		{name: "--refresh refreshes a valid login", auth: oauthCred(access, refresh, soon), args: []string{"--refresh"}, want: "new", refreshes: 1},
		{name: "not logged in", wantCode: 3, wantErr: "not logged in: run piauth login"},
		{name: "revoked refresh token", auth: oauthCred(access, authToken("ort", "invalid"), time.Now().Add(-time.Minute)),
			wantCode: 3, wantErr: "run piauth login"},
		{name: "one pooled key: auth.json is used", auth: oauthCred(access, refresh, soon),
			keys: []string{k1}, states: []keystore.KeyState{{}}, want: access},
		{name: "pool: the active key", auth: oauthCred(access, refresh, soon),
			keys: []string{k1, k2}, states: []keystore.KeyState{{}, {}}, active: 1, want: k2},
		{name: "pool: expired active key is refreshed",
			keys: []string{k1, k2}, states: []keystore.KeyState{{Refresh: authToken("ort", "k1"), Expires: time.Now().Add(-time.Minute).UnixMilli()}, {}},
			want: "new", refreshes: 1},
		{name: "pool: cooling and needs-login keys are skipped",
			keys: []string{k1, k2, k3}, states: []keystore.KeyState{{CooldownUntil: soon}, {NeedsReauth: true}, {}},
			want: k3, wantErr: "using key 3/3"},
		{name: "pool: every key rate-limited", auth: oauthCred(access, refresh, soon),
			keys: []string{k1, k2}, states: []keystore.KeyState{{CooldownUntil: soon}, {CooldownUntil: soon.Add(time.Hour)}},
			wantCode: 4, wantErr: "all 2 keys are rate-limited; first one frees at"},
		{name: "pool: nothing usable", auth: oauthCred(access, refresh, soon),
			keys: []string{k1, k2}, states: []keystore.KeyState{{NeedsReauth: true}, {Expires: 1}},
			wantCode: 3, wantErr: "no usable key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.writeAuth(t, tt.auth)
			if tt.keys != nil {
				env.seedPool(t, tt.active, false, tt.keys, tt.states)
			}

			r := env.run(t, "", append([]string{"token"}, tt.args...)...)

			assert.Equal(t, tt.wantCode, r.code, r.err)
			assert.Contains(t, r.err, tt.wantErr)
			assert.EqualValues(t, tt.refreshes, env.emu.Stats().Refreshes)
			assertNoToken(t, []string{access, refresh, k1, k2, k3}, r.err)
			if tt.wantCode != 0 {
				assert.Empty(t, r.out)
				return
			}
			require.Equal(t, 1, strings.Count(r.out, "\n"), "exactly one line: %q", r.out)
			got := strings.TrimSuffix(r.out, "\n")
			if tt.want == "new" {
				assert.NotContains(t, []string{access, k1, k2}, got)
				assert.True(t, env.usable(t, got), "the refreshed token works")
			} else {
				assert.Equal(t, tt.want, got)
			}
			if tt.wantErr == "" {
				assert.Empty(t, r.err, "nothing on stderr either")
			}
		})
	}
}

// 16 `piauth token` processes on one expired credential: one refresh, and
// every process prints the same, valid token.
func TestTokenSingleFlightProcesses(t *testing.T) {
	env := newAuthEnv(t)
	old := authToken("oat", "sf")
	env.writeAuth(t, oauthCred(old, authToken("ort", "sf"), time.Now().Add(-time.Minute)))
	bin := piauthBinary(t)

	const n = 16
	outs, errs, codes := tokenProcesses(t, bin, n, []string{env.dir}, env.vars())

	c := env.auth(t)
	require.NotEqual(t, old, c.Access)
	for i := range n {
		require.Equal(t, 0, codes[i], errs[i])
		assert.Equal(t, c.Access+"\n", outs[i])
		assert.Empty(t, errs[i])
	}
	assert.EqualValues(t, 1, env.emu.Stats().Refreshes)
	assert.Zero(t, env.emu.Stats().RejectedRefreshes)
	assert.True(t, env.usable(t, c.Access))
}

// A forced refresh must renew the token or fail: a refresh that cannot
// reach the token endpoint exits non-zero with nothing on stdout, even though
// the current token is still valid.
func TestTokenForcedRefreshFailure(t *testing.T) {
	env := newAuthEnv(t)
	access := authToken("oat", "ff")
	env.writeAuth(t, oauthCred(access, authToken("ort", "ff"), time.Now().Add(time.Hour)))
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(dead.Close)
	f, bufs := newTestFactory("", map[string]string{"PIAUTH_TOKEN_URL": dead.URL + "/v1/oauth/token", "PIAUTH_BASE_URL": env.url})
	code := run(context.Background(), f, []string{"piauth", "--dir", env.dir, "--keyring", "off", "token", "--refresh"})
	assert.Equal(t, exitError, code, bufs.Err.String())
	assert.Empty(t, bufs.Out.String(), "no token on stdout")
	assert.Contains(t, bufs.Err.String(), "the refresh did not renew the token")
	assertNoToken(t, []string{access}, bufs.Err.String())

	// Without --refresh the valid token is still handed out.
	f, bufs = newTestFactory("", map[string]string{"PIAUTH_TOKEN_URL": dead.URL + "/v1/oauth/token"})
	code = run(context.Background(), f, []string{"piauth", "--dir", env.dir, "--keyring", "off", "token"})
	assert.Equal(t, 0, code, bufs.Err.String())
	assert.Equal(t, access+"\n", bufs.Out.String())
}

// Ctrl-C during `piauth token --refresh` (a token endpoint that never
// answers): exit 130 and nothing on stdout, in a real process.
func TestTokenRefreshInterrupted(t *testing.T) {
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "ctrlc"), authToken("ort", "ctrlc"), time.Now().Add(time.Hour)))
	arrived, done := make(chan struct{}, 1), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); hang.Close() })
	cmd := exec.Command(piauthBinary(t), "--dir", env.dir, "--keyring", "off", "token", "--refresh")
	cmd.Env = append(os.Environ(), "PIAUTH_TOKEN_URL="+hang.URL+"/v1/oauth/token")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh never reached the token endpoint")
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	assert.Equal(t, exitInterrupted, ee.ExitCode(), stderr.String())
	assert.Empty(t, stdout.String())
	t.Logf("stderr: %s", stderr.String())
}

// tokenProcesses runs n `piauth token` processes at once, the i-th on agent
// dir dirs[i%len(dirs)] with vars added to the environment, and returns
// each one's stdout, stderr and exit code (-1: it did not run).
func tokenProcesses(t *testing.T, bin string, n int, dirs []string, vars map[string]string) (outs, errs []string, codes []int) {
	t.Helper()
	outs, errs, codes = make([]string, n), make([]string, n), make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(bin, "--dir", dirs[i%len(dirs)], "--keyring", "off", "token")
			cmd.Env = os.Environ()
			for k, v := range vars {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i], errs[i] = string(out), stderr.String()
			if ee, ok := err.(*exec.ExitError); ok {
				codes[i] = ee.ExitCode()
			} else if err != nil {
				codes[i] = -1
			}
		})
	}
	wg.Wait()
	return outs, errs, codes
}
