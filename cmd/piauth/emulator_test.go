package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startEmulatorCmd runs `piauth emulator ARGS` in-process and returns its URL
// (read from the first stdout line) and a stop function returning the exit code.
func startEmulatorCmd(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	f, _ := newTestFactory("", nil)
	pr, pw := io.Pipe()
	f.IO.Out = pw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, f, append([]string{"piauth", "emulator", "--quiet"}, args...))
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr) //nolint:errcheck // drain the rest
	require.True(t, strings.HasPrefix(line, "listening on http://"), "first line: %q", line)
	stop := func() int { cancel(); return <-done }
	t.Cleanup(func() { cancel() })
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), stop
}

func TestEmulatorCommandListensOnLoopbackAndStops(t *testing.T) {
	base, stop := startEmulatorCmd(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	host, _, err := net.SplitHostPort(u.Host)
	require.NoError(t, err)
	assert.True(t, net.ParseIP(host).IsLoopback(), "bound to %s", host)

	resp, err := http.Get(base + "/_emulator/stats")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	var stats map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stats))
	assert.Contains(t, stats, "requests")

	assert.Equal(t, 0, stop())
}

func TestEmulatorCommandScenario(t *testing.T) {
	scenario := filepath.Join(t.TempDir(), "s.json")
	require.NoError(t, os.WriteFile(scenario, []byte(`{"reply":{"text":"scripted hello"}}`), 0o600))
	base, stop := startEmulatorCmd(t, "--scenario", scenario)

	body := `{"model":"claude-sonnet-5-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("x-api-key", "sk-ant-api03-test-key-0001")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	assert.Contains(t, string(raw), "scripted hello")
	assert.Equal(t, 0, stop())
}

func TestEmulatorCommandErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"reply": 42}`), 0o600))
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"missing scenario", []string{"--scenario", filepath.Join(t.TempDir(), "nope.json")}, 1, "nope.json"},
		{"invalid scenario", []string{"--scenario", bad}, 1, "scenario"},
		{"stray argument", []string{"extra"}, 2, "no arguments"},
		{"busy or bad address", []string{"--addr", "127.0.0.1:notaport"}, 1, "emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", nil)
			code := run(context.Background(), f, append([]string{"piauth", "emulator", "--quiet"}, tt.args...))
			assert.Equal(t, tt.code, code, bufs.Err.String())
			assert.Contains(t, bufs.Err.String(), tt.err)
		})
	}
}
