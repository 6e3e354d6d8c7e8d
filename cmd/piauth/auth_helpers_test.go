package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// authToken builds a long, obviously fake token at run time (no token-like
// literal in the sources): kind is "oat", "ort" or "api".
func authToken(kind, seed string) string {
	return "sk-ant-" + kind + "01-" + strings.Repeat(seed+"Fake", 12)[:48]
}

// authEnv is an agent dir plus an emulator standing in for Anthropic.
type authEnv struct {
	emu *emulator.Emulator
	url string
	dir string
	now time.Time // zero: the real clock
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	emu := emulator.New(emulator.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &authEnv{emu: emu, url: srv.URL, dir: t.TempDir()}
}

// vars is the environment pointing piauth at the emulator.
func (e *authEnv) vars() map[string]string {
	return map[string]string{
		"PIAUTH_AUTHORIZE_URL": e.url + "/oauth/authorize",
		"PIAUTH_TOKEN_URL":     e.url + "/v1/oauth/token",
		"PIAUTH_BASE_URL":      e.url,
	}
}

// authRun is the outcome of one in-process piauth run.
type authRun struct {
	code     int
	out, err string
}

// run runs piauth in-process with --dir and --keyring off.
func (e *authEnv) run(t *testing.T, stdin string, args ...string) authRun {
	t.Helper()
	f, bufs := newTestFactory(stdin, e.vars())
	if !e.now.IsZero() {
		f.Now = func() time.Time { return e.now }
	}
	code := run(context.Background(), f, append([]string{"piauth", "--dir", e.dir, "--keyring", "off"}, args...))
	return authRun{code: code, out: bufs.Out.String(), err: bufs.Err.String()}
}

func (e *authEnv) store(t *testing.T) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(keystore.Options{Dir: e.dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	return s
}

// writeAuth writes auth.json as pi would: an openai-codex entry beside the
// anthropic one (nil: none).
func (e *authEnv) writeAuth(t *testing.T, anthropic map[string]any) {
	t.Helper()
	doc := map[string]any{"openai-codex": map[string]any{"type": "oauth", "access": "codex-access", "refresh": "codex-refresh", "expires": 1}}
	if anthropic != nil {
		doc["anthropic"] = anthropic
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, keystore.AuthFileName), b, 0o600))
}

// readAuthDoc returns auth.json's members.
func (e *authEnv) readAuthDoc(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, keystore.AuthFileName))
	require.NoError(t, err)
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

func (e *authEnv) auth(t *testing.T) *keystore.Credential {
	t.Helper()
	c, err := e.store(t).Auth()
	require.NoError(t, err)
	return c
}

func (e *authEnv) pool(t *testing.T) *keystore.Pool {
	t.Helper()
	p, err := e.store(t).Pool()
	require.NoError(t, err)
	return p
}

func (e *authEnv) seedPool(t *testing.T, active int, rotated bool, keys []string, states []keystore.KeyState) {
	t.Helper()
	_, err := e.store(t).UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for i, k := range keys {
			p.Add(k, states[i])
		}
		p.Active, p.Rotated = active, rotated
		return nil
	})
	require.NoError(t, err)
}

// usable reports whether the emulator accepts tok (its usage endpoint).
func (e *authEnv) usable(t *testing.T, tok string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+"/api/oauth/usage", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("anthropic-beta", emulator.OAuthBeta)
	req.Header.Set("User-Agent", "claude-code/"+stream.Builtin().Version()) // the 2026 usage endpoint wants it
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func oauthCred(access, refresh string, expires time.Time) map[string]any {
	return map[string]any{"type": "oauth", "access": access, "refresh": refresh, "expires": expires.UnixMilli()}
}

// assertNoToken fails when any of toks appears whole in texts.
func assertNoToken(t *testing.T, toks []string, texts ...string) {
	t.Helper()
	for _, tok := range toks {
		if tok == "" {
			continue
		}
		for _, s := range texts {
			assert.NotContains(t, s, tok, "a whole token was printed")
		}
	}
}

// holdPiLock simulates a running pi holding auth.json.lock for d. The
// returned channel yields, once the lock is gone, whether auth.json was left
// untouched while it was held.
func holdPiLock(t *testing.T, dir string, d time.Duration) <-chan bool {
	t.Helper()
	path := filepath.Join(dir, keystore.AuthFileName)
	before, _ := os.ReadFile(path)
	require.NoError(t, os.Mkdir(path+".lock", 0o700))
	untouched := make(chan bool, 1)
	go func() {
		time.Sleep(d)
		now, _ := os.ReadFile(path)
		_ = os.Remove(path + ".lock")
		untouched <- string(now) == string(before)
	}()
	return untouched
}
