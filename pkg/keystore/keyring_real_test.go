package keystore

// These tests talk to a REAL Secret Service (no mocks) and fail when none
// answers. Run them under a throw-away session bus and gnome-keyring:
//
//	dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null && go test -race ./pkg/keystore/...'

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
)

func TestRealKeyringRoundTrip(t *testing.T) {
	svc := testenv.KeyringService(t)
	ctx := context.Background()
	s, err := Open(Options{Dir: t.TempDir(), Mode: ModeOn, Service: svc})
	require.NoError(t, err)
	assert.Equal(t, "on (secret service)", s.KeyringState())

	a, b, c := fakeTok("oat01", 1), fakeTok("api03", 2), fakeTok("oat01", 3)
	_, err = s.UpdatePool(ctx, func(p *Pool) error {
		p.Add(a, KeyState{Label: "work", Refresh: "rf", Expires: 42})
		p.Add(b, KeyState{Label: "ci"})
		p.Add(c, KeyState{})
		return nil
	})
	require.NoError(t, err)
	_, err = s.UpdatePool(ctx, func(p *Pool) error { p.Remove(p.Find(c)); return nil })
	require.NoError(t, err)

	assert.True(t, s.InKeyring(Fingerprint(a)))
	assert.True(t, s.InKeyring(Fingerprint(b)))
	assert.False(t, s.InKeyring(Fingerprint(c)))
	assert.ElementsMatch(t, []string{"index", "key:" + Fingerprint(a), "key:" + Fingerprint(b)}, testenv.SecretToolUsers(t, svc))

	// Lose the file, restore it from the keyring.
	require.NoError(t, os.Remove(s.PoolPath()))
	s2, err := Open(Options{Dir: s.Dir(), Mode: ModeOn, Service: svc})
	require.NoError(t, err)
	p, err := s2.RestoreFromKeyring(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{a, b}, p.Keys)
	re, err := s2.Pool()
	require.NoError(t, err)
	assert.Equal(t, []string{a, b}, re.Keys)
	assert.Equal(t, KeyState{Label: "work", Refresh: "rf", Expires: 42}, *re.State(0))
	assert.Equal(t, "ci", re.State(1).Label)

	// Hand edit + sync.
	writeFile(t, s.PoolPath(), `{"keys": ["`+b+`", "`+c+`"]}`, 0o600)
	added, removed, err := s2.SyncKeyring(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, added, "c is new and b's label was dropped by the hand edit")
	assert.Equal(t, 1, removed)
	assert.ElementsMatch(t, []string{"index", "key:" + Fingerprint(b), "key:" + Fingerprint(c)}, testenv.SecretToolUsers(t, svc))
}

func TestOSKeyringErrors(t *testing.T) {
	svc := testenv.KeyringService(t)
	kr := NewOSKeyring(svc, 0)
	_, err := kr.Get("missing")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, kr.Delete("missing"), ErrNotFound)
	require.NoError(t, kr.Set("x", "secret-value"))
	v, err := kr.Get("x")
	require.NoError(t, err)
	assert.Equal(t, "secret-value", v)
	err = kr.Set("big", strings.Repeat("x", 5000))
	if err != nil { // Secret Service has no size cap; others map to a non-sentinel error
		assert.NotErrorIs(t, err, ErrKeyringUnavailable)
		assert.NotContains(t, err.Error(), "xxxxxxxx", "never echo the secret")
	}
}

// TestHangingKeyring points DBUS_SESSION_BUS_ADDRESS at a socket that accepts
// and never answers: ModeAuto warns once and works from the file, ModeOn fails
// with ErrKeyringUnavailable. Child processes, because godbus caches its
// session connection per process.
func TestHangingKeyring(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, never answer
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}()

	tests := []struct {
		mode      string
		wantErr   bool
		wantState string
	}{
		{"auto", false, "unavailable: keyring "},
		{"on", true, ""},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := t.TempDir()
			cmd := helper(t, "add", "DIR="+dir, "TOKEN="+fakeTok("oat01", 7), "MODE="+tt.mode,
				"SERVICE=piauth-test-hang", "DBUS_SESSION_BUS_ADDRESS=unix:path="+sock)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.wantErr {
				var ee *exec.ExitError
				assert.True(t, errors.As(err, &ee), "mode %s: exit non-zero", tt.mode)
				assert.Contains(t, stderr.String(), "keyring unavailable")
				return
			}
			assert.NoError(t, err, "mode %s: %s", tt.mode, stderr.String())
			assert.Equal(t, 1, strings.Count(stderr.String(), "OS keyring unavailable"), "warned once: %s", stderr.String())
			assert.Contains(t, string(out), tt.wantState)
			raw, err := os.ReadFile(filepath.Join(dir, PoolFileName))
			assert.NoError(t, err)
			assert.Contains(t, string(raw), fakeTok("oat01", 7), "works from the file")
		}()
	}
	wg.Wait()
}
