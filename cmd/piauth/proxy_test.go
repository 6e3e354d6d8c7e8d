package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// proxyTok is a short, obviously fake OAuth access token built at run time.
func proxyTok(seed string) string { return "sk-ant-" + "oat01-" + seed + "-proxycmd-fake" }

// proxyCmdEnv is an agent dir logged in with a fake token, and an emulator.
type proxyCmdEnv struct {
	dir   string // the agent dir
	state string // piauth's state dir (the proxy key's)
	tok   string
	emu   *emulator.Emulator
	url   string
}

func newProxyCmdEnv(t *testing.T, opts emulator.Options) *proxyCmdEnv {
	t.Helper()
	e := &proxyCmdEnv{dir: t.TempDir(), state: t.TempDir(), tok: proxyTok("auth"), emu: emulator.New(opts)}
	srv := httptest.NewServer(e.emu)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	doc := map[string]any{"anthropic": map[string]any{
		"type": "oauth", "access": e.tok, "refresh": "", "expires": time.Now().Add(24 * time.Hour).UnixMilli(),
	}}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(e.dir, keystore.AuthFileName), b, 0o600))
	return e
}

// factory is newTestFactory with env and the env's state dir.
func (e *proxyCmdEnv) factory(env map[string]string) (*Factory, *IOBuffers) {
	vars := map[string]string{"PIAUTH_STATE_DIR": e.state}
	maps.Copy(vars, env)
	return newTestFactory("", vars)
}

func (e *proxyCmdEnv) args(args ...string) []string {
	return append([]string{"piauth", "--dir", e.dir, "--keyring", "off"}, args...)
}

// runningProxy is an in-process `piauth proxy`.
type runningProxy struct {
	url, key string
	stderr   *bytes.Buffer // read only after stop
	stop     func() int
}

// startProxyCmd runs `piauth proxy ARGS` in-process and reads its usage
// lines (listening line first) for the URL and client key.
func (e *proxyCmdEnv) startProxyCmd(t *testing.T, args ...string) *runningProxy {
	t.Helper()
	f, bufs := e.factory(map[string]string{"PIAUTH_BASE_URL": e.url})
	pr, pw := io.Pipe()
	f.IO.Out = pw
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, f, e.args(append([]string{"proxy", "--addr", "127.0.0.1:0"}, args...)...))
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	first, err := br.ReadString('\n')
	require.NoError(t, err, "stderr: %s", bufs.Err)
	require.True(t, strings.HasPrefix(first, "listening on http://"), "first line: %q", first)
	rp := &runningProxy{stderr: bufs.Err, stop: func() int { cancel(); return <-done }}
	banner := first
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		banner += line
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			url, apiKey, ok := strings.Cut(rest, " ANTHROPIC_API_KEY=")
			require.True(t, ok, line)
			rp.url = strings.TrimPrefix(url, "ANTHROPIC_BASE_URL=")
			rp.key = apiKey
			break
		}
	}
	if rp.key != "unused" {
		// The banner says how to get the key but never holds it.
		keyCmd := "piauth --dir " + e.dir + " proxy --show-key"
		assert.Equal(t, "$("+keyCmd+")", rp.key)
		assert.Contains(t, banner, "printed by `"+keyCmd+"`")
		rp.key = e.showKey(t)
		assert.NotContains(t, banner, rp.key)
	}
	go io.Copy(io.Discard, br) //nolint:errcheck // drain
	if !strings.HasPrefix(first, "listening on http://0.0.0.0:") {
		assert.Equal(t, strings.TrimSpace(strings.TrimPrefix(first, "listening on ")), rp.url)
	}
	return rp
}

// showKey runs `piauth proxy --show-key` in-process and returns the key.
func (e *proxyCmdEnv) showKey(t *testing.T) string {
	t.Helper()
	f, bufs := e.factory(nil)
	require.Equal(t, 0, run(context.Background(), f, e.args("proxy", "--show-key")), bufs.Err.String())
	return strings.TrimSpace(bufs.Out.String())
}

func chatBody(streamed bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "claude-sonnet-5-5", "max_tokens": 128, "stream": streamed, "system": "Be terse.",
		"messages": []any{map[string]any{"role": "user", "content": "hi"}},
	})
	return b
}

// proxyPost sends a Messages request to the proxy with header k: v (none when k is "").
func proxyPost(t *testing.T, url string, streamed bool, k, v string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", bytes.NewReader(chatBody(streamed)))
	require.NoError(t, err)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	if k != "" {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestProxyShowKey(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	show := func() (string, string, int) {
		f, bufs := e.factory(nil)
		code := run(context.Background(), f, e.args("proxy", "--show-key"))
		return strings.TrimSpace(bufs.Out.String()), bufs.Err.String(), code
	}
	key, _, code := show()
	require.Equal(t, 0, code)
	assert.Regexp(t, `^piauth-proxy-[A-Za-z0-9_-]{43}$`, key)
	info, err := os.Stat(keystore.ProxyKeyPath(e.state))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again, _, _ := show()
	assert.Equal(t, key, again, "the key is generated once")

	require.NoError(t, os.WriteFile(keystore.ProxyKeyPath(e.state), []byte("garbage\n"), 0o600))
	fresh, stderr, code := show()
	require.Equal(t, 0, code)
	assert.NotEqual(t, key, fresh)
	assert.Contains(t, stderr, "does not hold a proxy key")

	// A key others could read may have leaked: replaced, with a warning.
	require.NoError(t, os.Chmod(keystore.ProxyKeyPath(e.state), 0o644))
	replaced, stderr, code := show()
	require.Equal(t, 0, code)
	assert.NotEqual(t, fresh, replaced)
	assert.Contains(t, stderr, "readable by other users (mode 0644)")
	info, err = os.Stat(keystore.ProxyKeyPath(e.state))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

// A proxy key an earlier piauth kept in pi's agent dir moves to the state
// dir on first use: the same key, so clients set up with it keep working,
// and no copy stays in pi's dir.
func TestProxyKeyMovesOutOfAgentDir(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	legacy := filepath.Join(e.dir, keystore.ProxyKeyFileName)
	old := keystore.ProxyKeyPrefix + strings.Repeat("legacyKEY", 5)
	require.NoError(t, os.WriteFile(legacy, []byte(old+"\n"), 0o600))

	p := e.startProxyCmd(t)
	assert.Equal(t, old, p.key, "the proxy serves the key clients already have")
	assert.Equal(t, 200, proxyPost(t, p.url, false, "x-api-key", old).StatusCode)
	assert.NoFileExists(t, legacy)
	data, err := os.ReadFile(keystore.ProxyKeyPath(e.state))
	require.NoError(t, err)
	assert.Equal(t, old+"\n", string(data))
	require.Equal(t, 0, p.stop())
	assert.Contains(t, p.stderr.String(), "moved the proxy key from "+legacy+" to "+keystore.ProxyKeyPath(e.state))
	assert.NotContains(t, p.stderr.String(), old)
}

func TestProxyCommandServes(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	p := e.startProxyCmd(t)

	f, bufs := e.factory(nil)
	require.Equal(t, 0, run(context.Background(), f, e.args("proxy", "--show-key")))
	assert.Equal(t, strings.TrimSpace(bufs.Out.String()), p.key, "the printed key is the stored one")

	assert.Equal(t, 401, proxyPost(t, p.url, false, "", "").StatusCode)
	assert.Equal(t, 401, proxyPost(t, p.url, false, "x-api-key", "not-the-key").StatusCode)
	assert.Equal(t, 200, proxyPost(t, p.url, false, "x-api-key", p.key).StatusCode)
	// pi logged in to Anthropic sends the user's own token: accepted, dropped, replaced.
	assert.Equal(t, 200, proxyPost(t, p.url, false, "Authorization", "Bearer "+e.tok).StatusCode)
	assert.Equal(t, 401, proxyPost(t, p.url, false, "Authorization", "Bearer "+proxyTok("stranger")).StatusCode)
	// A request that already went through a piauth proxy: a loop.
	assert.Equal(t, 508, proxyPost(t, p.url, false, "X-Piauth-Proxy-Hop", "1").StatusCode)

	resp := proxyPost(t, p.url, true, "Authorization", "Bearer "+p.key)
	require.Equal(t, 200, resp.StatusCode)
	msg, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "end_turn", msg.StopReason)

	require.Equal(t, 0, p.stop())
	log := p.stderr.String()
	assert.Equal(t, 7, strings.Count(log, `"/v1/messages"`), log)
	assert.Contains(t, log, "key="+keystore.Mask(e.tok))
	assert.NotContains(t, log, e.tok)
	assert.NotContains(t, log, p.key)
}

func TestProxyCommandJSONLogAndRotation(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	limited, good := proxyTok("ratelimited"), proxyTok("good")
	store, err := keystore.Open(keystore.Options{Dir: e.dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Add(limited, keystore.KeyState{})
		p.Add(good, keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	p := e.startProxyCmd(t, "--json-log")

	resp := proxyPost(t, p.url, true, "x-api-key", p.key)
	require.Equal(t, 200, resp.StatusCode)
	_, err = stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err, "one clean stream")
	assert.Equal(t, int64(2), e.emu.Stats().Requests["/v1/messages"])

	require.Equal(t, 0, p.stop())
	var rec map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		}
	}
	require.NotNil(t, rec, p.stderr.String())
	assert.Equal(t, keystore.Mask(good), rec["key"])
	assert.EqualValues(t, 200, rec["status"])
	assert.Equal(t, true, rec["stream"])
	for _, tok := range []string{limited, good, p.key} {
		assert.NotContains(t, p.stderr.String(), tok)
	}
}

func TestProxyCommandWarnings(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	p := e.startProxyCmd(t, "--no-auth", "--addr", "0.0.0.0:0")
	assert.Equal(t, "unused", p.key)
	assert.True(t, strings.HasPrefix(p.url, "http://127.0.0.1:"), p.url)
	assert.Equal(t, 200, proxyPost(t, p.url, false, "", "").StatusCode)
	require.Equal(t, 0, p.stop())
	assert.Contains(t, p.stderr.String(), "warning: --no-auth")
	assert.Contains(t, p.stderr.String(), "warning: listening on 0.0.0.0:0, beyond this machine")
}

func TestProxyCommandErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		logout  bool
		code    int
		wantErr string
	}{
		{name: "not logged in", logout: true, code: 3, wantErr: "not logged in"},
		{name: "bad address", args: []string{"--addr", "nonsense"}, code: 2, wantErr: "--addr"},
		{name: "arguments", args: []string{"extra"}, code: 2, wantErr: "no arguments"},
		{name: "origin with a path", args: []string{"--allow-origin", "http://localhost:3000/app"}, code: 2, wantErr: "--allow-origin"},
		{name: "origin without scheme", args: []string{"--allow-origin", "localhost:3000"}, code: 2, wantErr: "--allow-origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProxyCmdEnv(t, emulator.Options{})
			if tt.logout {
				require.NoError(t, os.Remove(filepath.Join(e.dir, keystore.AuthFileName)))
			}
			f, bufs := e.factory(map[string]string{"PIAUTH_BASE_URL": e.url})
			code := run(context.Background(), f, e.args(append([]string{"proxy"}, tt.args...)...))
			assert.Equal(t, tt.code, code, bufs.Err.String())
			assert.Contains(t, bufs.Err.String(), tt.wantErr)
		})
	}
}

// lineWatcher copies a process's stderr and closes seen once a line
// containing want arrives.
type lineWatcher struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	done chan struct{} // closed at EOF
}

func watchLines(r io.Reader, want string) *lineWatcher {
	w := &lineWatcher{want: want, seen: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(r)
		found := false
		for sc.Scan() {
			w.mu.Lock()
			w.buf.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if !found && strings.Contains(sc.Text(), want) {
				found = true
				close(w.seen)
			}
		}
	}()
	return w
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A real `piauth proxy` process gets SIGTERM in the middle of a stream: the
// stream still completes and the process exits 0.
func TestProxyProcessSIGTERMFinishesStream(t *testing.T) {
	bin := piauthBinary(t)
	g := testenv.NewStreamGate()
	e := newProxyCmdEnv(t, emulator.Options{Scenario: &emulator.Scenario{Reply: emulator.Reply{EventDelayMS: 1}}, Sleep: g.Sleep})

	cmd := exec.Command(bin, e.args("proxy", "--addr", "127.0.0.1:0")[1:]...)
	cmd.Env = append(os.Environ(), "PIAUTH_BASE_URL="+e.url, "PIAUTH_STATE_DIR="+e.state, "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderrPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	stderr := watchLines(stderrPipe, "shutting down")

	br := bufio.NewReader(stdout)
	first, err := br.ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr)
	base := strings.TrimSpace(strings.TrimPrefix(first, "listening on "))
	keyPath := keystore.ProxyKeyPath(e.state)
	key, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	go io.Copy(io.Discard, br) //nolint:errcheck // drain

	resp := proxyPost(t, base, true, "x-api-key", strings.TrimSpace(string(key)))
	require.Equal(t, 200, resp.StatusCode)
	dec := stream.NewDecoder(resp.Body)
	require.True(t, dec.Next())
	require.Equal(t, "message_start", dec.Event().Name)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	<-stderr.seen // the proxy is shutting down while the stream is held
	g.Open()
	var acc stream.Accumulator
	_, err = acc.Add(dec.Event())
	require.NoError(t, err)
	for dec.Next() {
		_, err := acc.Add(dec.Event())
		require.NoError(t, err)
	}
	require.NoError(t, dec.Err())
	require.NoError(t, acc.Finish(), "the stream completed")

	<-stderr.done // the process closed stderr: it is exiting
	require.NoError(t, cmd.Wait(), "stderr: %s", stderr)
	assert.Equal(t, 0, cmd.ProcessState.ExitCode())
	assert.NotContains(t, stderr.String(), e.tok)
}

// Only the current login's token is accepted besides the proxy key: not a
// pooled key (a dead or removed one would buy service), not an expired login.
func TestProxyCommandAcceptsOnlyTheLogin(t *testing.T) {
	tests := []struct {
		name    string
		expired bool
		present func(e *proxyCmdEnv) string
		status  int
	}{
		{name: "the login", present: func(e *proxyCmdEnv) string { return e.tok }, status: 200},
		{name: "a pooled key", present: func(*proxyCmdEnv) string { return proxyTok("pooled-a") }, status: 401},
		{name: "the login, expired", expired: true, present: func(e *proxyCmdEnv) string { return e.tok }, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProxyCmdEnv(t, emulator.Options{})
			store, err := keystore.Open(keystore.Options{Dir: e.dir, Mode: keystore.ModeOff})
			require.NoError(t, err)
			_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
				p.Add(proxyTok("pooled-a"), keystore.KeyState{})
				p.Add(proxyTok("pooled-b"), keystore.KeyState{})
				return nil
			})
			require.NoError(t, err)
			if tt.expired {
				require.NoError(t, store.UpdateAuth(context.Background(), func(c *keystore.Credential) (*keystore.Credential, error) {
					c.Expires = time.Now().Add(-time.Hour).UnixMilli()
					return c, nil
				}))
			}
			p := e.startProxyCmd(t)
			resp := proxyPost(t, p.url, false, "Authorization", "Bearer "+tt.present(e))
			assert.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, 0, p.stop())
		})
	}
}

// --allow-origin lets one web origin in (with CORS headers); every other
// Origin and every foreign Host is refused even with --no-auth.
func TestProxyCommandOriginAndHost(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	p := e.startProxyCmd(t, "--no-auth", "--allow-origin", "http://localhost:3000")
	tests := []struct {
		name, origin, host string
		status             int
	}{
		{name: "no origin", status: 200},
		{name: "allowed origin", origin: "http://localhost:3000", status: 200},
		{name: "other origin", origin: "https://evil.example", status: 403},
		{name: "rebound host", host: "evil.example", status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, p.url+"/v1/messages", bytes.NewReader(chatBody(false)))
			require.NoError(t, err)
			req.Header.Set("content-type", "application/json")
			req.Header.Set("anthropic-version", "2023-06-01")
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.status == 200 && tt.origin != "" {
				assert.Equal(t, tt.origin, resp.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
	assert.Zero(t, p.stop())
}

// An upstream that is the proxy's own address is refused at start.
func TestProxyCommandRefusesSelfLoop(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			require.NoError(t, err)
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			require.NoError(t, ln.Close())
			e := newProxyCmdEnv(t, emulator.Options{})
			f, bufs := e.factory(map[string]string{"PIAUTH_BASE_URL": "http://" + host + ":" + port})
			code := run(context.Background(), f, e.args("proxy", "--addr", "127.0.0.1:"+port))
			assert.Equal(t, 2, code, bufs.Err.String())
			assert.Contains(t, bufs.Err.String(), "is this proxy's own address")
			assert.NotContains(t, bufs.Out.String(), "listening on")
		})
	}
}
