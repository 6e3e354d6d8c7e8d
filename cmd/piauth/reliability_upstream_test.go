package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// keys_lost_on_401: an upstream that answers 401 to every key (a mistyped
// PIAUTH_BASE_URL, a proxy in between, an outage) must not cost one key:
// every pooled key stays in the file and in the real keyring, usable.
func TestReliabilityKeysKeptOnBlanket401(t *testing.T) {
	svc := testenv.KeyringService(t)
	env := newAuthEnv(t)
	keys := []string{authToken("api", "k1"), authToken("api", "k2"), authToken("oat", "k3"), authToken("api", "k4")}
	s, err := keystore.Open(keystore.Options{Dir: env.dir, Mode: keystore.ModeOn, Service: svc})
	require.NoError(t, err)
	_, err = s.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for _, k := range keys {
			p.Add(k, keystore.KeyState{})
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, testenv.SecretToolUsers(t, svc), len(keys)+1, "keys and index mirrored")

	var refused atomic.Int64
	wall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`))
	}))
	t.Cleanup(wall.Close)
	vars := map[string]string{"PIAUTH_BASE_URL": wall.URL, "PIAUTH_TOKEN_URL": env.url + "/v1/oauth/token",
		"PIAUTH_KEYRING_SERVICE": svc, "PIAUTH_STATE_DIR": t.TempDir()}
	for range 3 {
		p := relRun(t, vars, "", "--dir", env.dir, "--keyring", "on", "chat", "hi")
		assert.Equal(t, exitError, p.code, p.err)
		assert.Contains(t, p.err, "refused 2 different keys")
		assert.Contains(t, p.err, "no key was changed")
	}

	after, err := s.Pool()
	require.NoError(t, err)
	lost := 0
	for _, k := range keys {
		i := after.Find(k)
		if i < 0 || !after.Status(i, time.Now()).State.Usable() {
			lost++
		}
	}
	items := testenv.SecretToolUsers(t, svc)
	lost += max(len(keys)+1-len(items), 0)
	assert.LessOrEqual(t, refused.Load(), int64(6), "two keys a run, never the whole pool")
	relResult(t, "keys_lost_on_401", lost)
	assert.Zero(t, lost)
}

// hang_seconds: a server that accepts and never answers. chat, token
// --refresh and a request through the proxy give up within the timeout
// (PIAUTH_TIMEOUT=2s) plus a little, naming the URL and what set the limit.
func TestReliabilityHang(t *testing.T) {
	hang := "http://" + testenv.SilentServer(t) // accepts, never answers
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "hang"), authToken("ort", "hang"), time.Now().Add(time.Hour)))
	const timeout = 2 * time.Second
	worst := time.Duration(0)
	measure := func(name string, vars map[string]string, args ...string) relProc {
		vars["PIAUTH_TIMEOUT"] = "2s"
		vars["PIAUTH_STATE_DIR"] = t.TempDir()
		start := time.Now()
		p := relRun(t, vars, "", append([]string{"--dir", env.dir, "--keyring", "off"}, args...)...)
		took := time.Since(start)
		worst = max(worst, took)
		t.Logf("%s gave up after %v: %s", name, took, strings.TrimSpace(p.err))
		assert.NotEqual(t, 0, p.code, name)
		assert.Contains(t, p.err, "within 2s", name)
		assert.Contains(t, p.err, "limit set by PIAUTH_TIMEOUT", name)
		assert.Empty(t, p.out, name)
		return p
	}
	measure("chat", map[string]string{"PIAUTH_BASE_URL": hang}, "chat", "hi")
	measure("token --refresh", map[string]string{"PIAUTH_TOKEN_URL": hang + "/v1/oauth/token"}, "token", "--refresh")

	// The proxy: its upstream hangs; the client gets an answer in time.
	port := freePort(t)
	state := t.TempDir()
	startProxyProcessEnv(t, env.dir, port, map[string]string{"PIAUTH_BASE_URL": hang, "PIAUTH_TIMEOUT": "2s", "PIAUTH_STATE_DIR": state})
	key, err := keystore.ProxyKey(context.Background(), state, "", func(string, ...any) {})
	require.NoError(t, err)
	start := time.Now()
	resp := proxyPost(t, "http://127.0.0.1:"+port, false, "x-api-key", key)
	took := time.Since(start)
	worst = max(worst, took)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)

	secs := worst.Seconds()
	relResult(t, "hang_seconds", float64(int(secs*100))/100)
	assert.LessOrEqual(t, secs, (timeout + 2*time.Second).Seconds())
}

// tokens_sent_after_redirect (the Messages API): an upstream that answers a
// redirect to another host gets no credential re-sent there.
func TestReliabilityRedirectMessages(t *testing.T) {
	var stolen atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			stolen.Add(1)
		}
	}))
	t.Cleanup(target.Close)
	sent := 0
	for _, code := range []int{301, 302, 303, 307, 308} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, code)
		}))
		env := newAuthEnv(t)
		env.writeAuth(t, oauthCred(authToken("oat", "redir"), authToken("ort", "redir"), time.Now().Add(time.Hour)))
		p := relRun(t, map[string]string{"PIAUTH_BASE_URL": redirector.URL, "PIAUTH_STATE_DIR": t.TempDir()}, "",
			"--dir", env.dir, "--keyring", "off", "chat", "hi")
		redirector.Close()
		assert.NotEqual(t, 0, p.code, "HTTP %d", code)
		assert.Contains(t, p.err, "redirect refused", "HTTP %d", code)
		sent++
	}
	require.Equal(t, 5, sent)
	relResult(t, "tokens_sent_after_redirect", stolen.Load())
	assert.Zero(t, stolen.Load())
}
