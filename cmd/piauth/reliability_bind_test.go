package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/pkce"
)

// callback_bind_nonloopback: the callback server, the emulator and the proxy
// bind loopback addresses only by default (127.0.0.1; the login callback
// also [::1], since its redirect URI says localhost), read from the
// listeners' own addresses.
func TestReliabilityBindLoopback(t *testing.T) {
	violations := 0
	check := func(what, addr string) {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			violations++
			t.Errorf("%s listens on %q, want a loopback address", what, addr)
		}
	}

	// pkce callback server, port 0 and the default port path.
	cb, err := pkce.ListenCallback(context.Background(), 0, "state")
	require.NoError(t, err)
	check("pkce callback server", cb.Addr().String())
	require.NoError(t, cb.Close())

	// The emulator's default listener, and a bare ":0".
	for _, addr := range []string{"", ":0"} {
		ln, err := emulator.Listen(addr)
		require.NoError(t, err)
		check(fmt.Sprintf("emulator.Listen(%q)", addr), ln.Addr().String())
		ln.Close()
	}
	// `piauth emulator` with its default --addr.
	base, stop := startEmulatorCmd(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	check("piauth emulator", u.Host)
	assert.Equal(t, 0, stop())

	// `piauth proxy`: the default --addr is loopback, and the listener it opens
	// on a loopback address reports it.
	var def string
	for _, fl := range newProxyCmd(newSystemFactory()).Flags {
		if fl.Names()[0] == "addr" {
			def = fmt.Sprint(fl.(interface{ GetDefaultText() string }).GetDefaultText())
		}
	}
	check("piauth proxy default --addr", strings.Trim(def, `"`))
	pe := newProxyCmdEnv(t, emulator.Options{})
	rp := pe.startProxyCmd(t)
	pu, err := url.Parse(rp.url)
	require.NoError(t, err)
	check("piauth proxy", pu.Host)
	rp.stop()

	// A real `piauth login --port 0` process: its listening socket, as the
	// kernel reports it in /proc/net/tcp{,6}.
	env := newAuthEnv(t)
	cmd := exec.Command(piauthBinary(t), "--dir", env.dir, "--keyring", "off", "login", "--no-browser", "--port", "0")
	cmd.Env = relEnv(env.vars())
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	port := 0
	sc := bufio.NewScanner(stderr)
	for port == 0 && sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, env.url+"/oauth/authorize?") {
			au, err := url.Parse(line)
			require.NoError(t, err)
			ru, err := url.Parse(au.Query().Get("redirect_uri"))
			require.NoError(t, err)
			port, err = strconv.Atoi(ru.Port())
			require.NoError(t, err)
		}
	}
	require.NotZero(t, port, "login printed no authorize URL")
	addrs := listeningAddrs(t, port)
	require.NotEmpty(t, addrs, "no listener on port %d", port)
	for _, a := range addrs {
		check("piauth login callback (/proc/net)", a)
	}

	relResult(t, "callback_bind_nonloopback", violations)
}

// listeningAddrs returns the local addresses of the TCP sockets in LISTEN
// state on port, from /proc/net/tcp and /proc/net/tcp6.
func listeningAddrs(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		var data []byte
		for range 50 { // the listener may not be visible yet
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			data = b
			if strings.Contains(strings.ToUpper(string(b)), fmt.Sprintf(":%04X ", port)) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(fields[1], ":")
			p, _ := strconv.ParseInt(hexPort, 16, 32)
			if int(p) != port {
				continue
			}
			out = append(out, net.JoinHostPort(procIP(hexIP), hexPort))
		}
	}
	return out
}

// procIP decodes /proc/net's little-endian-per-word hex address.
func procIP(h string) string {
	b := make([]byte, len(h)/2)
	for i := range b {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		b[i] = byte(v)
	}
	ip := make(net.IP, len(b))
	for w := 0; w < len(b); w += 4 {
		ip[w], ip[w+1], ip[w+2], ip[w+3] = b[w+3], b[w+2], b[w+1], b[w]
	}
	return ip.String()
}
