package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// leakEnv is an emulator whose token endpoint responses are recorded, so
// every minted access and refresh token is known to the test.
type leakEnv struct {
	*authEnv
	mu      sync.Mutex
	secrets map[string]bool
	outputs []string // every byte printed, labelled
}

func newLeakEnv(t *testing.T) *leakEnv {
	emu := emulator.New(emulator.Options{})
	le := &leakEnv{secrets: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/oauth/token" {
			emu.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		emu.ServeHTTP(rec, r)
		var tok struct{ AccessToken, RefreshToken string }
		body := rec.Body.Bytes()
		var raw map[string]any
		if json.Unmarshal(body, &raw) == nil {
			tok.AccessToken, _ = raw["access_token"].(string)
			tok.RefreshToken, _ = raw["refresh_token"].(string)
			le.add(tok.AccessToken, tok.RefreshToken)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	le.authEnv = &authEnv{emu: emu, url: srv.URL, dir: t.TempDir()}
	return le
}

func (le *leakEnv) add(toks ...string) {
	le.mu.Lock()
	defer le.mu.Unlock()
	for _, tok := range toks {
		if tok != "" {
			le.secrets[tok] = true
		}
	}
}

// run runs piauth (a process) in dir with extra env and records its output;
// tokenStdout marks `piauth token`, whose stdout is allowed to hold a token.
func (le *leakEnv) run(t *testing.T, dir string, env map[string]string, stdin string, args ...string) relProc {
	t.Helper()
	vars := le.vars()
	for k, v := range env {
		vars[k] = v
	}
	p := relRun(t, vars, stdin, append([]string{"--dir", dir}, args...)...)
	le.record(strings.Join(args, " "), p, len(args) > 0 && args[len(args)-1] == "token" || len(args) > 1 && args[len(args)-2] == "token")
	return p
}

func (le *leakEnv) record(label string, p relProc, tokenStdout bool) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.outputs = append(le.outputs, label+" [stderr]\x00"+p.err)
	if !tokenStdout {
		le.outputs = append(le.outputs, label+" [stdout]\x00"+p.out)
	}
}

// login runs `piauth login --no-browser --port 0 ARGS` and follows the
// authorize URL it prints (the emulator redirects to the callback).
func (le *leakEnv) login(t *testing.T, dir string, args ...string) relProc {
	t.Helper()
	cmd := exec.Command(piauthBinary(t), append([]string{"--dir", dir, "--keyring", "off", "login", "--no-browser", "--port", "0"}, args...)...)
	cmd.Env = relEnv(le.vars())
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var all strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if u := strings.TrimSpace(line); strings.HasPrefix(u, le.url+"/oauth/authorize?") {
			resp, err := http.Get(u)
			require.NoError(t, err)
			resp.Body.Close()
		}
	}
	err = cmd.Wait()
	p := relProc{out: stdout.String(), err: all.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		p.code = ee.ExitCode()
	}
	le.record("login "+strings.Join(args, " "), p, false)
	return p
}

// harvest adds every token found in dir's files to the secrets.
func (le *leakEnv) harvest(t *testing.T, dir string) {
	t.Helper()
	s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	if c, err := s.Auth(); err == nil {
		le.add(c.Access, c.Refresh, c.Key)
	}
	if p, err := s.Pool(); err == nil {
		le.add(p.Keys...)
		for i := range p.Keys {
			le.add(p.State(i).Refresh)
		}
	}
}

// tokenShape finds unmasked token-shaped strings (a masked one has "…"
// after a few characters).
var tokenShape = regexp.MustCompile(`sk-ant-[a-z]{3}[0-9]{2}-[A-Za-z0-9_\-]{16,}`)

// token_leaks: the whole flow against the emulator, with known and minted
// secrets; no output but `piauth token`'s stdout holds a whole token.
func TestReliabilityTokenLeaks(t *testing.T) {
	le := newLeakEnv(t)
	piauthBinary(t)
	dir := le.dir
	off := []string{"--keyring", "off"}
	ok := func(p relProc) { t.Helper(); assert.Equal(t, 0, p.code, p.err) }

	// Logins, pooled keys, listing and status.
	ok(le.login(t, dir))
	k1, k2 := testKey("oat01", 8101), testKey("api03", 8102)
	rl1, rl2 := chatToken("ratelimited-leak1"), chatToken("ratelimited-leak2")
	le.add(k1, k2, rl1, rl2)
	ok(le.run(t, dir, nil, rl1+"\n"+k1+"\n"+k2+"\n", append(off, "key", "add", "--stdin", "--label", "seeded")...))
	ok(le.login(t, dir, "--add-to-pool", "--label", "second"))
	ok(le.run(t, dir, nil, "", append(off, "key", "use", "1")...)) // the rate-limited key: chat rotates
	for _, args := range [][]string{{"key", "list"}, {"key", "list", "--json"}, {"status"}, {"status", "--json"},
		{"token"}, {"token", "--refresh"}, {"chat", "hi"}, {"chat", "--stream", "hi"}, {"chat", "--json", "hi"},
		{"chat", "--thinking", "1024", "--show-thinking", "hi"}, {"key", "list", "--json"}, {"status", "--json"}} {
		ok(le.run(t, dir, nil, "", append(off, args...)...))
	}
	ok(le.run(t, dir, nil, "hello\nsecond turn\n", append(off, "chat", "-i")...))
	le.harvest(t, dir)
	// The detector sees what it must: `token` prints a known secret.
	tp := le.run(t, dir, nil, "", append(off, "token")...)
	le.mu.Lock()
	known := le.secrets[strings.TrimSpace(tp.out)]
	le.mu.Unlock()
	require.True(t, known, "token printed an unknown token")

	// Error paths on the same dir.
	tools := filepath.Join(t.TempDir(), "tools.json")
	require.NoError(t, os.WriteFile(tools, []byte(`[{"name": 1}`), 0o600))
	for _, args := range [][]string{{"key", "use", "99"}, {"key", "remove", "99"}, {"chat", "--tools", tools, "hi"},
		{"chat", "--thinking", "5", "hi"}, {"key", "add", "--stdin"}, {"login", "--manual"}} {
		p := le.run(t, dir, nil, "not-a-key\n", append(off, args...)...)
		assert.NotEqual(t, 0, p.code, "%v: %s", args, p.err)
	}
	// --keyring on with a broken keyring (no bus at all, and a silent one).
	for i, bus := range []string{"unix:path=" + filepath.Join(t.TempDir(), "none"), silentBus(t)} {
		env := map[string]string{"DBUS_SESSION_BUS_ADDRESS": bus, "PIAUTH_KEYRING_SERVICE": "piauth-leak-test"}
		key := testKey("oat01", 8103+i)
		le.add(key)
		for _, args := range [][]string{{"key", "list"}, {"key", "add", "--stdin"}, {"key", "sync"}, {"token"}, {"status"}} {
			p := le.run(t, dir, env, key+"\n", append([]string{"--keyring", "on"}, args...)...)
			if args[0] == "key" { // token and status need no keyring
				assert.Equal(t, 1, p.code, "%v: %s", args, p.err)
				assert.Contains(t, p.err, "keyring")
			}
		}
		ok(le.run(t, dir, env, "", "--keyring", "auto", "key", "list"))
	}

	// Every error kind of chat, on its own dir.
	for _, marker := range []string{"ratelimited", "overloaded", "midstream", "invalid"} {
		d := t.TempDir()
		access, refresh := chatToken(marker+"-leak"), "sk-ant-ort01-leak-"+marker+"-"+strings.Repeat("r", 40)
		le.add(access, refresh)
		le.writeAuthIn(t, d, access, refresh)
		for _, mode := range [][]string{nil, {"--stream"}, {"--json"}} {
			le.run(t, d, nil, "", append(append(append([]string{}, off...), "chat"), append(mode, "hi")...)...)
		}
		le.run(t, d, nil, "", append(off, "status")...)
		le.harvest(t, d)
	}
	empty := t.TempDir()
	for _, args := range [][]string{{"chat", "hi"}, {"token"}, {"status"}, {"key", "list"}} {
		le.run(t, empty, nil, "", append(off, args...)...)
	}
	limited := t.TempDir()
	writePoolFile(t, limited, []string{rl1, rl2}, nil)
	for _, args := range [][]string{{"chat", "hi"}, {"chat", "--json", "hi"}, {"chat", "hi"}, {"token"}, {"key", "list"}, {"status", "--json"}} {
		le.run(t, limited, nil, "", append(off, args...)...)
	}
	ok(le.run(t, dir, nil, "", append(off, "logout")...))

	// Count whole secrets (known or token-shaped) in every output.
	le.mu.Lock()
	defer le.mu.Unlock()
	require.Greater(t, len(le.secrets), 10)
	leaks := 0
	for _, o := range le.outputs {
		label, text, _ := strings.Cut(o, "\x00")
		for sec := range le.secrets {
			if strings.Contains(text, sec) {
				leaks++
				t.Errorf("%s printed a whole secret (%s)", label, keystore.Mask(sec))
			}
		}
		for _, m := range tokenShape.FindAllString(text, -1) {
			if !le.secrets[m] && !strings.HasPrefix(m, "sk-ant-ort01-leak") {
				leaks++
				t.Errorf("%s printed a token-shaped string %s", label, keystore.Mask(m))
			}
		}
	}
	leaks += panicLeaks(t)
	relResult(t, "token_leaks", leaks)
}

func (le *leakEnv) writeAuthIn(t *testing.T, dir, access, refresh string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"anthropic": oauthCred(access, refresh, time.Now().Add(time.Hour))})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, keystore.AuthFileName), b, 0o600))
}

// panicReader panics with a token in the panic value.
type panicReader struct{ tok string }

func (p panicReader) Read([]byte) (int, error) { panic(fmt.Errorf("reading %s failed", p.tok)) }

// panicLeaks makes piauth panic with a token in the panic value: run must
// recover, print the value and the stack with the token masked, exit 1.
func panicLeaks(t *testing.T) int {
	tok := testKey("oat01", 8200)
	f, bufs := newTestFactory("", nil)
	f.IO.In = io.NopCloser(panicReader{tok})
	code := run(context.Background(), f, []string{"piauth", "--dir", t.TempDir(), "--keyring", "off", "key", "add", "--stdin"})
	assert.Equal(t, exitError, code)
	out := bufs.Out.String() + bufs.Err.String()
	assert.Contains(t, out, "panic: reading "+keystore.Mask(tok)+" failed")
	assert.Contains(t, out, "goroutine ", "the stack is printed")
	if strings.Contains(out, tok) {
		t.Errorf("the panic message printed the whole token")
		return 1
	}
	return 0
}
