package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// longLineBytes is the size of the one SSE line the upstream sends.
const longLineBytes = 200 << 20

// maxProxyRSSMB is the bound on the proxy's peak RSS for that line.
const maxProxyRSSMB = 100

// A real `piauth proxy` process in front of an upstream that streams one
// 200 MB SSE line: the proxy cuts the stream with an `event: error` and a
// log entry, and its peak RSS (VmHWM) stays bounded.
func TestReliabilityProxyLongLine(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the peak RSS")
	}
	dir := t.TempDir()
	tok := proxyTok("longline")
	auth, err := json.Marshal(map[string]any{"anthropic": map[string]any{
		"type": "oauth", "access": tok, "refresh": "", "expires": time.Now().Add(24 * time.Hour).UnixMilli(),
	}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, keystore.AuthFileName), auth, 0o600))

	up, sent := longLineUpstream(t, true)

	state := t.TempDir()
	px := startProxy(t, dir, map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": state}, "event_too_large", "--addr", "127.0.0.1:0")
	cmd, base, stderr := px.cmd, px.base, px.stderr
	key, err := os.ReadFile(keystore.ProxyKeyPath(state))
	require.NoError(t, err)

	resp := proxyPost(t, base, true, "x-api-key", strings.TrimSpace(string(key)))
	require.Equal(t, 200, resp.StatusCode)
	var names []string
	var last string
	dec := stream.NewDecoder(resp.Body)
	for dec.Next() {
		names = append(names, dec.Event().Name)
		last = string(dec.Event().Data)
	}
	require.NoError(t, dec.Err())
	assert.Equal(t, []string{"message_start", "error"}, names)
	assert.Contains(t, last, "exceeds 16 MiB, the proxy's limit")
	select {
	case <-stderr.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("no log line for the cut stream: %s", stderr)
	}
	select {
	case n := <-sent:
		assert.Less(t, n, int64(longLineBytes), "the proxy stopped reading")
	case <-time.After(30 * time.Second):
		t.Fatal("upstream still writing")
	}

	peak := peakRSSMB(t, cmd.Process.Pid)
	relResult(t, "peak_rss_mb_on_200mb_line", peak)
	assert.LessOrEqual(t, peak, maxProxyRSSMB)
}

// longLineUpstream is a Messages upstream that streams message_start and
// then one content_block_delta line of longLineBytes (and, with stop, the
// end of the message). sent receives how much of the line it wrote before
// the client hung up.
func longLineUpstream(t *testing.T, stop bool) (up *httptest.Server, sent <-chan int64) {
	t.Helper()
	ch := make(chan int64, 1)
	up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-5-5\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n")
		io.WriteString(w, "event: content_block_delta\ndata: ")
		chunk := []byte(strings.Repeat("x", 64<<10))
		var n int64
		for n < longLineBytes {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break // the client hung up, as it should
			}
		}
		if stop {
			io.WriteString(w, "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		}
		ch <- n
	}))
	t.Cleanup(up.Close)
	return up, ch
}

// peakRSSMB is VmHWM of process pid, in MB (rounded up).
func peakRSSMB(t *testing.T, pid int) int {
	t.Helper()
	mb, ok := vmHWM(pid)
	require.True(t, ok, "no VmHWM in /proc/%d/status", pid)
	return mb
}

// vmHWM reads VmHWM of process pid in MB (rounded up); false when the
// process is gone or has no memory (a zombie).
func vmHWM(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return (kb + 1023) / 1024, err == nil
		}
	}
	return 0, false
}

// freePort is a loopback TCP port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n different free loopback ports (all held open until
// every one is chosen: a port closed and asked for again may come back).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	for i := range ports {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		ports[i] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startProxyProcessEnv runs `piauth proxy` on 127.0.0.1:port with env
// (PIAUTH_BASE_URL: its upstream) and returns its stderr watcher once it
// listens.
func startProxyProcessEnv(t *testing.T, dir, port string, env map[string]string) *lineWatcher {
	t.Helper()
	p := startProxy(t, dir, env, "\x00", "--addr", "127.0.0.1:"+port)
	require.Equal(t, "http://127.0.0.1:"+port, p.base)
	return p.stderr
}

// proxyProcess is a real `piauth proxy` started by startProxy.
type proxyProcess struct {
	cmd    *exec.Cmd
	base   string       // http://HOST:PORT from its "listening on" line
	stderr *lineWatcher // its stderr, watched for a marker
}

// startProxy runs `piauth --dir dir --keyring off proxy args…` with env
// (added to this process's), waits for its "listening on" line, drains
// stdout and watches stderr for marker. The process is killed when the test
// ends unless the test waited for it first.
func startProxy(t *testing.T, dir string, env map[string]string, marker string, args ...string) *proxyProcess {
	t.Helper()
	cmd := exec.Command(piauthBinary(t), append([]string{"--dir", dir, "--keyring", "off", "proxy"}, args...)...)
	cmd.Env = relEnv(env)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderrPipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stderr := watchLines(stderrPipe, marker)
	br := bufio.NewReader(stdout)
	first, err := br.ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr)
	go io.Copy(io.Discard, br) //nolint:errcheck // drain
	return &proxyProcess{cmd: cmd, base: strings.TrimSpace(strings.TrimPrefix(first, "listening on ")), stderr: stderr}
}

// Two real proxies pointing at each other (a loop no start-up check can
// see): the first request that comes back gets 508 Loop Detected, so one
// client request costs exactly two hops instead of exhausting file
// descriptors.
func TestProxyProcessLoopDetected(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	ports := freePorts(t, 2)
	portA, portB := ports[0], ports[1]
	a := startProxyProcessEnv(t, e.dir, portA, map[string]string{"PIAUTH_BASE_URL": "http://127.0.0.1:" + portB, "PIAUTH_STATE_DIR": e.state})
	b := startProxyProcessEnv(t, e.dir, portB, map[string]string{"PIAUTH_BASE_URL": "http://127.0.0.1:" + portA, "PIAUTH_STATE_DIR": e.state})

	resp := proxyPost(t, "http://127.0.0.1:"+portA, false, "x-api-key", e.showKey(t))
	require.Equal(t, http.StatusLoopDetected, resp.StatusCode)
	var apiErr struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&apiErr))
	assert.Equal(t, "error", apiErr.Type)
	assert.Contains(t, apiErr.Error.Message, "request loop")
	assert.Zero(t, e.emu.Stats().Requests["/v1/messages"])
	assert.Eventually(t, func() bool {
		return strings.Count(a.String(), " 508 ") == 1 && strings.Count(b.String(), " 508 ") == 1
	}, 5*time.Second, 20*time.Millisecond, "A:\n%s\nB:\n%s", a, b)
}
