//go:build unix && !darwin && !ios

package keystore

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNoSessionBus(t *testing.T) {
	run := t.TempDir() // stands for /run/user/UID
	xdg := t.TempDir()
	sock := filepath.Join(xdg, "bus")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	withBus := t.TempDir()
	writeFile(t, filepath.Join(withBus, "bus"), "", 0o600)
	tests := []struct {
		name    string
		env     map[string]string
		run     string
		wantBus bool
		want    string
	}{
		{name: "address set", env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nowhere"}, run: run, wantBus: true},
		{name: "nothing", env: map[string]string{}, run: run, want: "DBUS_SESSION_BUS_ADDRESS is unset"},
		{name: "autolaunch address", env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": "autolaunch:"}, run: run, want: "piauth never starts one"},
		{name: "godbus's runtime dir has a bus", env: map[string]string{}, run: withBus, wantBus: true},
		{name: "bus socket elsewhere", env: map[string]string{"XDG_RUNTIME_DIR": xdg}, run: run, want: "export DBUS_SESSION_BUS_ADDRESS=unix:path=" + sock},
		{name: "empty XDG_RUNTIME_DIR", env: map[string]string{"XDG_RUNTIME_DIR": t.TempDir()}, run: run, want: "no $XDG_RUNTIME_DIR/bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := noSessionBusIn(func(k string) string { return tt.env[k] }, tt.run)
			if tt.wantBus {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, tt.want)
		})
	}
}

// hostHasBusDir: godbus would find /run/user/UID/bus on its own here, so a
// Store cannot be shown to do without one.
func hostHasBusDir() bool {
	run := "/run/user/" + strconv.Itoa(os.Getuid())
	for _, n := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(filepath.Join(run, n)); err == nil {
			return true
		}
	}
	return false
}

// With no session bus, the Store never builds go-keyring's client: auto
// warns once per session and works from files, on and explicit commands fail.
func TestStoreWithoutSessionBus(t *testing.T) {
	if hostHasBusDir() {
		t.Skip("/run/user/UID/bus exists: godbus connects there without launching anything")
	}
	runtime := t.TempDir()
	env := map[string]string{"XDG_RUNTIME_DIR": runtime, "HOME": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	dir := t.TempDir()
	tok := fakeTok("oat01", 21)

	var warn bytes.Buffer
	s, err := Open(Options{Dir: dir, Mode: ModeAuto, Getenv: getenv, Warn: &warn, Service: "piauth-nobus-test"})
	require.NoError(t, err)
	assert.Nil(t, s.kr, "go-keyring is never asked")
	_, err = s.UpdatePool(ctx, func(p *Pool) error { p.Add(tok, KeyState{}); return nil })
	require.NoError(t, err)
	_, ok := s.KeyringIndex()
	assert.False(t, ok)
	assert.Contains(t, s.KeyringState(), "unavailable: no D-Bus session bus")
	assert.Equal(t, 1, strings.Count(warn.String(), "warning"), warn.String())
	assert.Contains(t, warn.String(), `{"keyring": "off"}`)
	assert.Contains(t, warn.String(), filepath.Join(env["HOME"], ".config", "piauth", "config.json"))
	_, _, err = s.SyncKeyring(ctx)
	assert.ErrorIs(t, err, ErrKeyringUnavailable)

	// Another command of the same shell session: no second warning.
	var warn2 bytes.Buffer
	s2, err := Open(Options{Dir: dir, Mode: ModeAuto, Getenv: getenv, Warn: &warn2})
	require.NoError(t, err)
	p, err := s2.UpdatePool(ctx, func(p *Pool) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, []string{tok}, p.Keys)
	assert.Empty(t, warn2.String())
	ents, err := os.ReadDir(filepath.Join(runtime, "piauth"))
	require.NoError(t, err)
	assert.Len(t, ents, 1, "one marker for this session")

	// --keyring on: an error naming the missing bus, and no warning.
	var warn3 bytes.Buffer
	s3, err := Open(Options{Dir: dir, Mode: ModeOn, Getenv: getenv, Warn: &warn3})
	require.NoError(t, err)
	_, err = s3.UpdatePool(ctx, func(p *Pool) error { p.Add(fakeTok("oat01", 22), KeyState{}); return nil })
	require.ErrorIs(t, err, ErrKeyringUnavailable)
	assert.Contains(t, err.Error(), "no D-Bus session bus")
	assert.Empty(t, warn3.String())
}

// A marker of a session that is gone is removed when a new one is made.
func TestFirstInSessionPrunes(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "x.session-2147480000")
	writeFile(t, dead, "", 0o600)
	assert.True(t, firstInSession(dir, "x"))
	assert.False(t, firstInSession(dir, "x"))
	assert.NoFileExists(t, dead)
	assert.True(t, firstInSession(dir, "y"), "markers are per name")
	assert.True(t, firstInSession("", "x"), "no dir: always warn")
}
