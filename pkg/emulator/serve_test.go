package emulator

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenDefaultsToLoopback(t *testing.T) {
	for _, addr := range []string{"", ":0", "127.0.0.1:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := Listen(addr)
			require.NoError(t, err)
			defer ln.Close()
			tcp, ok := ln.Addr().(*net.TCPAddr)
			require.True(t, ok)
			assert.True(t, tcp.IP.IsLoopback(), "bound to %s", tcp)
			assert.NotZero(t, tcp.Port)
		})
	}
	_, err := Listen("no-port")
	assert.Error(t, err)
}

func TestServePrintsAddressAndShutsDown(t *testing.T) {
	e := New(Options{Scenario: &Scenario{Tokens: []TokenRule{{Contains: "slow", Reply: &Reply{EventDelayMS: 3_600_000}}}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, "", pw); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "listening on ")
	require.True(t, ok, "first line: %q", line)
	u, err := url.Parse(base)
	require.NoError(t, err)
	assert.Equal(t, "http", u.Scheme)
	assert.Equal(t, "127.0.0.1", u.Hostname())

	resp, err := http.Get(base + "/_emulator/stats")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A stream stuck in a one-hour delay must not hold up shutdown.
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(streamBody(nil)))
	require.NoError(t, err)
	req.Header = oauthHeaders(fakeTok("oat", "slow"))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
	rest, _ := io.ReadAll(resp.Body)
	assert.NotContains(t, string(rest), "message_stop")
}
