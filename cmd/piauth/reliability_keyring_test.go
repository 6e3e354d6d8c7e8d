package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// silentBus listens on a unix socket, accepts every connection and never
// answers: a D-Bus session bus that hangs.
func silentBus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "unix:path=" + path
}

// keyring_hang_seconds: with a bus that never answers, `key list` finishes
// from the file with one warning, and `--keyring on` fails clearly.
func TestReliabilityKeyringHang(t *testing.T) {
	dir := t.TempDir()
	keys := []string{testKey("oat01", 7001), testKey("api03", 7002)}
	writePoolFile(t, dir, keys, nil)
	env := map[string]string{"DBUS_SESSION_BUS_ADDRESS": silentBus(t), "PIAUTH_KEYRING_SERVICE": "piauth-hang-test"}

	piauthBinary(t) // built before the clock starts
	start := time.Now()
	auto := relRun(t, env, "", "--dir", dir, "--keyring", "auto", "key", "list")
	autoSecs := time.Since(start).Seconds()
	start = time.Now()
	on := relRun(t, env, "", "--dir", dir, "--keyring", "on", "key", "list")
	onSecs := time.Since(start).Seconds()
	worst := max(autoSecs, onSecs)
	t.Logf("auto %.2fs, on %.2fs; on stderr %q", autoSecs, onSecs, on.err)
	relResult(t, "keyring_hang_seconds", fmt.Sprintf("%.2f", worst))

	assert.Equal(t, 0, auto.code, auto.err)
	assert.Equal(t, 1, strings.Count(auto.err, "warning"), "one warning: %q", auto.err)
	assert.Contains(t, auto.err, "keyring unavailable")
	assert.Contains(t, auto.out, "sk-ant-oat01-", "listed from the file")
	assert.Equal(t, 2, strings.Count(auto.out, "sk-ant-"), auto.out)
	assert.Equal(t, 1, on.code, on.err)
	assert.Contains(t, strings.ToLower(on.err), "keyring")
	assert.Empty(t, on.out)
	assert.False(t, auto.panicked() || on.panicked())
	assertNoSecret(t, keys, auto.out, auto.err, on.out, on.err)
	assert.LessOrEqual(t, worst, 4.0, "keyring_hang_seconds bound")
}
