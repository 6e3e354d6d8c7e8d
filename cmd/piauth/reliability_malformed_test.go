package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

// malformedTally counts what the corpus produced.
type malformedTally struct {
	t       *testing.T
	cases   int
	panics  int
	changed int
}

// check records one piauth run on a broken input: exit 1 or 2 with a clear
// message on stderr (mentioning one of want), no panic, and no file of root
// changed (ignoreMode: the documented 0600 fix).
func (m *malformedTally) check(name string, p relProc, before, after map[string]fileSnap, ignoreMode bool, want ...string) {
	t := m.t
	t.Helper()
	m.cases++
	if p.panicked() {
		m.panics++
		t.Errorf("%s: panic:\n%s", name, p.err)
	}
	if ch := changedFiles(before, after, ignoreMode); len(ch) > 0 {
		m.changed++
		t.Errorf("%s: files changed: %v", name, ch)
	}
	if p.code != 1 && p.code != 2 {
		t.Errorf("%s: exit %d, want 1 or 2; stderr: %s", name, p.code, p.err)
	}
	ok := len(want) == 0
	for _, w := range want {
		ok = ok || strings.Contains(p.err, w)
	}
	if !ok || !strings.HasPrefix(p.err, "piauth: ") && !strings.Contains(p.err, "\npiauth: ") {
		t.Errorf("%s: unclear error (want a \"piauth: \" line mentioning one of %q): %q", name, want, p.err)
	}
}

// pasteRefused records one `login --manual` run; exit 1 or 2, no panic, no change.
func (m *malformedTally) report() {
	relResult(m.t, "malformed_inputs_panics", m.panics)
	relResult(m.t, "malformed_inputs_files_changed", m.changed)
	m.t.Logf("malformed corpus: %d cases", m.cases)
}

// malformedFiles is the broken auth.json / key-rotation.json corpus: the
// keystore's own corpus plus huge, binary and BOM-prefixed files.
func malformedFiles(t *testing.T) (auth, pool map[string][]byte) {
	t.Helper()
	auth, pool = map[string][]byte{}, map[string][]byte{}
	entries, err := os.ReadDir("../../pkg/keystore/testdata/malformed")
	require.NoError(t, err)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("../../pkg/keystore/testdata/malformed", e.Name()))
		require.NoError(t, err)
		switch {
		case strings.HasPrefix(e.Name(), "auth-"):
			auth[e.Name()] = b
		case strings.HasPrefix(e.Name(), "pool-"):
			pool[e.Name()] = b
		}
	}
	require.NotEmpty(t, auth)
	require.NotEmpty(t, pool)
	huge := append([]byte(`{"keys": ["`), bytes.Repeat([]byte("a"), 17<<20)...)
	huge = append(huge, `"]}`...)
	auth["huge"], pool["huge"] = huge, huge
	auth["binary"] = []byte{0x00, 0xff, 0xfe, 0x7b, 0x01, 0x80, 0x22}
	auth["bom"] = append([]byte("\xef\xbb\xbf"), `{"anthropic": {"type": "api_key", "key": "x"}}`...)
	auth["wrong-types"] = []byte(`{"anthropic": {"type": "oauth", "access": 42, "refresh": ["x"], "expires": "soon"}}`)
	auth["dup-keys"] = []byte(`{"anthropic": {"type": "api_key", "key": "a", "key": "b"}}`)
	auth["truncated"] = []byte(`{"anthropic": {"type": "oauth", "acc`)
	auth["empty"] = []byte{}
	pool["state-wrong-types"] = []byte(`{"keys": ["sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaa"], "piauth": {"version": 1, "active": 0, "states": {"abc": {"expires": "x", "needs_reauth": "yes"}}}}`)
	pool["active-out-of-range-type"] = []byte(`{"keys": [], "piauth": {"active": [1]}}`)
	return auth, pool
}

// malformed_inputs_*: broken files, SSE streams, callback requests and
// pasted codes never panic, never change a file, and exit 1 or 2 with a
// clear message.
func TestReliabilityMalformedInputs(t *testing.T) {
	m := &malformedTally{t: t}
	defer m.report()
	env := newAuthEnv(t)
	piauthBinary(t)
	goodKey := testKey("api03", 9001)
	goodAuth, err := json.Marshal(map[string]any{"anthropic": oauthCred(authToken("oat", "mal"), authToken("ort", "mal"), time.Now().Add(time.Hour))})
	require.NoError(t, err)
	goodPool, err := json.Marshal(map[string]any{"keys": []string{goodKey, testKey("oat01", 9002)}})
	require.NoError(t, err)

	// setup makes root/agent with files (name → content) and returns root and agent.
	setup := func(files map[string][]byte) (string, string) {
		root := t.TempDir()
		agent := filepath.Join(root, "agent")
		require.NoError(t, os.Mkdir(agent, 0o700))
		for name, data := range files {
			require.NoError(t, os.WriteFile(filepath.Join(agent, name), data, 0o600))
		}
		return root, agent
	}
	authCmds := [][]string{{"token"}, {"status"}, {"status", "--json"}, {"chat", "hi"}, {"logout"}, {"login", "--manual"}, {"key", "add"}}
	poolCmds := [][]string{{"key", "list"}, {"key", "list", "--json"}, {"key", "add", "--stdin"}, {"key", "use", "1"},
		{"key", "reset"}, {"key", "remove", "1"}, {"token"}, {"status"}, {"chat", "hi"}}
	runFileCase := func(name, file string, data []byte, other map[string][]byte, cmds [][]string) {
		files := map[string][]byte{file: data}
		for k, v := range other {
			files[k] = v
		}
		root, agent := setup(files)
		for _, args := range cmds {
			before := snapshotDir(t, root)
			p := relRun(t, env.vars(), testKey("oat01", 9100)+"\n", append([]string{"--dir", agent, "--keyring", "off"}, args...)...)
			m.check(fmt.Sprintf("%s %s: %s", file, name, strings.Join(args, " ")), p, before, snapshotDir(t, root), false, wantFor(args, file)...)
		}
	}
	authFiles, poolFiles := malformedFiles(t)
	for name, data := range authFiles {
		runFileCase(name, keystore.AuthFileName, data, nil, authCmds)
	}
	for name, data := range poolFiles {
		runFileCase(name, keystore.PoolFileName, data, map[string][]byte{keystore.AuthFileName: goodAuth}, poolCmds)
	}
	// Symlinks to a valid file elsewhere: refused, neither link nor target touched.
	for _, c := range []struct {
		file string
		data []byte
		cmds [][]string
	}{{keystore.AuthFileName, goodAuth, authCmds}, {keystore.PoolFileName, goodPool, poolCmds}} {
		root, agent := setup(nil)
		target := filepath.Join(root, "elsewhere.json")
		require.NoError(t, os.WriteFile(target, c.data, 0o600))
		require.NoError(t, os.Symlink(target, filepath.Join(agent, c.file)))
		for _, args := range c.cmds {
			before := snapshotDir(t, root)
			p := relRun(t, env.vars(), testKey("oat01", 9101)+"\n", append([]string{"--dir", agent, "--keyring", "off"}, args...)...)
			m.check(fmt.Sprintf("%s symlink: %s", c.file, strings.Join(args, " ")), p, before, snapshotDir(t, root), false, wantFor(args, "symlink")...)
		}
	}
	// World-readable files: a warning, mode fixed to 0600, content untouched.
	for _, c := range []struct {
		file string
		data []byte
		args []string
	}{{keystore.AuthFileName, goodAuth, []string{"status"}}, {keystore.PoolFileName, goodPool, []string{"key", "list"}}} {
		root, agent := setup(map[string][]byte{c.file: c.data})
		path := filepath.Join(agent, c.file)
		require.NoError(t, os.Chmod(path, 0o644))
		before := snapshotDir(t, root)
		p := relRun(t, env.vars(), "", append([]string{"--dir", agent, "--keyring", "off"}, c.args...)...)
		m.cases++
		if p.panicked() {
			m.panics++
		}
		if ch := changedFiles(before, snapshotDir(t, root), true); len(ch) > 0 {
			m.changed++
			t.Errorf("%s 0644: content changed: %v", c.file, ch)
		}
		assert.Equal(t, 0, p.code, p.err)
		assert.Equal(t, 1, strings.Count(p.err, "mode 0644, fixing to 0600"), p.err)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	}

	malformedSSE(t, m, setup, goodAuth)
	malformedCallback(t, m, env, setup, goodAuth)
	malformedPaste(t, m, env, setup, goodAuth)
	assert.Zero(t, m.panics)
	assert.Zero(t, m.changed)
}

// malformedSSE serves broken event streams to `piauth chat` in every mode.
func malformedSSE(t *testing.T, m *malformedTally, setup func(map[string][]byte) (string, string), goodAuth []byte) {
	ev := func(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }
	start := ev("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}}}`)
	block := ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	delta := func(i int) string {
		return ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":"hi"}}`, i))
	}
	stop := ev("content_block_stop", `{"type":"content_block_stop","index":0}`) +
		ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`)
	end := ev("message_stop", `{"type":"message_stop"}`)
	cases := map[string]string{
		"truncated":            start + block + delta(0),
		"cut mid-line":         start + block + "event: content_block_delta\ndata: {\"type\":\"content_block_del",
		"empty body":           "",
		"not sse":              "<html><body>502 Bad Gateway</body></html>",
		"invalid json":         start + block + ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"`) + stop + end,
		"oversized line":       start + block + "event: content_block_delta\ndata: " + strings.Repeat("x", 20<<20) + "\n\n" + stop + end,
		"unknown events only":  ev("surprise", `{"type":"surprise"}`) + ev("ping", `{"type":"ping"}`) + ev("another", `not json`),
		"delta before start":   start + delta(3) + stop + end,
		"start out of order":   start + ev("content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}`) + delta(0) + stop + end,
		"stop unknown index":   start + block + delta(0) + ev("content_block_stop", `{"type":"content_block_stop","index":7}`) + end,
		"wrong types":          ev("message_start", `{"type":"message_start","message":"nope"}`) + block + delta(0) + stop + end,
		"negative index":       start + ev("content_block_start", `{"type":"content_block_start","index":-1,"content_block":{"type":"text","text":""}}`) + end,
		"huge index":           start + ev("content_block_start", `{"type":"content_block_start","index":4000000000,"content_block":{"type":"text","text":""}}`) + end,
		"error event":          start + block + ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
		"error event bad json": start + ev("error", `{{{`),
		"stop without start":   end,
	}
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	for name, b := range cases {
		body = b
		for _, mode := range [][]string{nil, {"--stream"}, {"--json"}} {
			root, agent := setup(map[string][]byte{keystore.AuthFileName: goodAuth})
			before := snapshotDir(t, root)
			args := append(append([]string{"--dir", agent, "--keyring", "off", "chat"}, mode...), "hi")
			p := relRun(t, map[string]string{"PIAUTH_BASE_URL": srv.URL, "PIAUTH_TOKEN_URL": srv.URL + "/v1/oauth/token"}, "", args...)
			m.check(fmt.Sprintf("sse %s %v", name, mode), p, before, snapshotDir(t, root), false)
		}
	}
}

// malformedCallback sends bad requests to a running `piauth login
// --no-browser --port 0`; it keeps waiting, then a provider error ends it.
func malformedCallback(t *testing.T, m *malformedTally, env *authEnv, setup func(map[string][]byte) (string, string), goodAuth []byte) {
	root, agent := setup(map[string][]byte{keystore.AuthFileName: goodAuth})
	before := snapshotDir(t, root)
	cmd := exec.Command(piauthBinary(t), "--dir", agent, "--keyring", "off", "login", "--no-browser", "--port", "0")
	cmd.Env = relEnv(env.vars())
	var stderr testenv.Buffer
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	timer := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(pipe)
	var redirect, state string
	for redirect == "" && sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fmt.Fprintln(&stderr, line)
		if strings.HasPrefix(line, env.url+"/oauth/authorize?") {
			u, err := url.Parse(line)
			require.NoError(t, err)
			redirect, state = u.Query().Get("redirect_uri"), u.Query().Get("state")
		}
	}
	require.NotEmpty(t, redirect, stderr.String())
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for sc.Scan() {
			fmt.Fprintln(&stderr, sc.Text())
		}
	}()
	// The redirect URI names localhost; talk to 127.0.0.1 only.
	base := strings.Replace(strings.TrimSuffix(redirect, "/callback"), "localhost", "127.0.0.1", 1)
	big := strings.Repeat("q", 1<<20)
	reqs := []struct{ method, path string }{
		{"GET", "/callback"},
		{"GET", "/callback?code=abc"},
		{"GET", "/callback?state=" + state},
		{"GET", "/callback?code=abc&state=wrong"},
		{"GET", "/callback?code=&state=" + state},
		{"GET", "/callback?error=access_denied&state=wrong"},
		{"GET", "/callback?code=abc&state=" + state + "&pad=" + big},
		{"GET", "/callback?" + big},
		{"POST", "/callback?code=abc&state=" + state},
		{"PUT", "/callback?code=abc&state=" + state},
		{"DELETE", "/callback"},
		{"GET", "/elsewhere?code=abc&state=" + state},
		{"GET", "/callback%00?code=abc&state=" + state},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, r := range reqs {
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader("x"))
		require.NoError(t, err)
		resp, err := client.Do(req)
		label := r.method + " " + r.path[:min(len(r.path), 60)]
		if err != nil {
			t.Errorf("callback %s: %v", label, err)
			continue
		}
		resp.Body.Close()
		assert.True(t, resp.StatusCode >= 400 && resp.StatusCode < 500, "callback %s: status %d", label, resp.StatusCode)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	require.NoError(t, err)
	_, after, _ := strings.Cut(string(stat), ") ")
	require.False(t, strings.HasPrefix(after, "Z"), "login must still be waiting after bad requests: %s", stderr.String())
	resp, err := client.Get(base + "/callback?error=access_denied&error_description=no&state=" + url.QueryEscape(state))
	require.NoError(t, err)
	resp.Body.Close()
	<-drained // stderr read to its end before Wait closes the pipe
	werr := cmd.Wait()
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	p := relProc{code: code, err: lastLines(stderr.String())}
	m.check("callback: bad requests then access_denied", p, before, snapshotDir(t, root), false, "denied")
}

// lastLines is s from its first "piauth: " error line on.
func lastLines(s string) string {
	if i := strings.Index(s, "piauth: "); i >= 0 {
		return s[i:]
	}
	return s
}

// malformedPaste feeds bad pasted codes to `piauth login --manual`.
func malformedPaste(t *testing.T, m *malformedTally, env *authEnv, setup func(map[string][]byte) (string, string), goodAuth []byte) {
	cases := map[string]string{
		"empty":          "",
		"blank lines":    "\n\n\n",
		"garbage":        "not a code at all\n",
		"wrong state":    "abc#wrongstate\n",
		"url wrong":      "https://console.anthropic.com/oauth/code/callback?code=abc&state=wrong\n",
		"query no state": "code=abc\n",
		"empty code":     "#state\n",
		"error url":      "http://localhost:53692/callback?error=access_denied\n",
		"binary":         "\x00\xff\xfe\x01#\x80\n",
		"huge line":      strings.Repeat("c", 1<<20) + "#" + strings.Repeat("s", 1<<20) + "\n",
		"no newline":     "abc#def",
	}
	for name, in := range cases {
		root, agent := setup(map[string][]byte{keystore.AuthFileName: goodAuth})
		before := snapshotDir(t, root)
		p := relRun(t, env.vars(), in, "--dir", agent, "--keyring", "off", "login", "--manual")
		m.check("paste "+name, p, before, snapshotDir(t, root), false)
	}
}

// wantFor is what the error of args on a broken file must mention: the file
// (or "symlink"), except `login --manual`, which fails on its (empty) paste
// before it reads any file.
func wantFor(args []string, file string) []string {
	if len(args) > 1 && args[0] == "login" {
		return []string{"paste", file}
	}
	return []string{file}
}
