package keystore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

// goodProxyKey is a well-formed proxy key built at run time.
func goodProxyKey() string { return keystore.ProxyKeyPrefix + strings.Repeat("Ab9_-", 9) }

func TestProxyKey(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		keep    bool   // the stored key is returned unchanged
		warning string // "" = no warning
	}{
		{name: "missing: created"},
		{name: "valid: kept", keep: true, setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()+"\n"), 0o600))
		}},
		{name: "read-only 0400: kept", keep: true, setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()), 0o400))
		}},
		{name: "garbage", warning: "does not hold a proxy key", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
		}},
		{name: "bad characters", warning: "does not hold a proxy key", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()+"\r\nX-Evil: 1"), 0o600))
		}},
		{name: "readable by others", warning: "readable by other users (mode 0644)", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()), 0o600))
			require.NoError(t, os.Chmod(path, 0o644))
		}},
		{name: "symlink", warning: "is a symlink", setup: func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			require.NoError(t, os.WriteFile(target, []byte(goodProxyKey()), 0o600))
			require.NoError(t, os.Symlink(target, path))
			t.Cleanup(func() {
				data, err := os.ReadFile(target)
				require.NoError(t, err)
				assert.Equal(t, goodProxyKey(), string(data), "the symlink's target is untouched")
			})
		}},
		{name: "FIFO never blocks", warning: "not a regular file", setup: func(t *testing.T, path string) {
			require.NoError(t, syscall.Mkfifo(path, 0o600))
		}},
		{name: "too large", warning: "too large", setup: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, make([]byte, 17<<20), 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := keystore.ProxyKeyPath(dir)
			if tt.setup != nil {
				tt.setup(t, path)
			}
			var warnings []string
			warnf := func(format string, a ...any) { warnings = append(warnings, fmt.Sprintf(format, a...)) }
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done := make(chan struct{})
			var key string
			var err error
			go func() { defer close(done); key, err = keystore.ProxyKey(ctx, dir, "", warnf) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("ProxyKey blocked")
			}
			require.NoError(t, err)
			if tt.keep {
				assert.Equal(t, goodProxyKey(), key)
			} else {
				assert.Regexp(t, `^piauth-proxy-[A-Za-z0-9_-]{43}$`, key)
			}
			if tt.warning == "" {
				assert.Empty(t, warnings)
			} else {
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], tt.warning)
				assert.Contains(t, warnings[0], path)
				assert.Contains(t, warnings[0], "generating a new proxy key")
			}
			fi, err := os.Lstat(path)
			require.NoError(t, err)
			assert.True(t, fi.Mode().IsRegular(), "a regular file now: %s", fi.Mode())
			if !tt.keep {
				assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			}
			again, err := keystore.ProxyKey(ctx, dir, "", warnf)
			require.NoError(t, err)
			assert.Equal(t, key, again, "the key is stable once written")
		})
	}
}

// A proxy-key owned by someone else is replaced (needs root to set up).
func TestProxyKeyOtherOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	dir := t.TempDir()
	path := keystore.ProxyKeyPath(dir)
	require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()), 0o600))
	require.NoError(t, os.Chown(path, 65534, 65534))
	var warned string
	key, err := keystore.ProxyKey(context.Background(), dir, "", func(f string, a ...any) { warned = fmt.Sprintf(f, a...) })
	require.NoError(t, err)
	assert.NotEqual(t, goodProxyKey(), key)
	assert.Contains(t, warned, "owned by another user (uid 65534)")
}

// Proxies starting at once agree on one key.
func TestProxyKeyConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := keystore.ProxyKey(context.Background(), dir, "", func(string, ...any) {})
			assert.NoError(t, err)
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys {
		assert.Equal(t, keys[0], k)
	}
}

// An earlier piauth kept the proxy key in pi's agent dir: a sound key there
// moves to the state dir (the same key: clients set up with it keep
// working); anything else there is left alone and a new key is made.
func TestProxyKeyMovesLegacyFile(t *testing.T) {
	tests := []struct {
		name   string
		legacy func(t *testing.T, path string) // writes the agent dir's file
		state  bool                            // the state dir already has a key
		moved  bool                            // the legacy key is returned and its file removed
	}{
		{name: "sound legacy key moves", moved: true, legacy: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()+"\n"), 0o600))
		}},
		{name: "no legacy file: a new key"},
		{name: "legacy readable by others: left alone", legacy: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()), 0o600))
			require.NoError(t, os.Chmod(path, 0o644))
		}},
		{name: "legacy garbage: left alone", legacy: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
		}},
		{name: "state key wins, legacy untouched", state: true, legacy: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte(goodProxyKey()+"\n"), 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state", "piauth") // not there yet
			agent := t.TempDir()
			legacyPath := keystore.ProxyKeyPath(agent)
			var before []byte
			if tt.legacy != nil {
				tt.legacy(t, legacyPath)
				var err error
				before, err = os.ReadFile(legacyPath)
				require.NoError(t, err)
			}
			stateKey := keystore.ProxyKeyPrefix + strings.Repeat("stateKEY_", 5)
			if tt.state {
				require.NoError(t, os.MkdirAll(state, 0o700))
				require.NoError(t, os.WriteFile(keystore.ProxyKeyPath(state), []byte(stateKey+"\n"), 0o600))
			}
			var warnings []string
			warnf := func(format string, a ...any) { warnings = append(warnings, fmt.Sprintf(format, a...)) }
			key, err := keystore.ProxyKey(context.Background(), state, agent, warnf)
			require.NoError(t, err)

			data, err := os.ReadFile(keystore.ProxyKeyPath(state))
			require.NoError(t, err)
			assert.Equal(t, key+"\n", string(data), "the state dir holds the key returned")
			fi, err := os.Stat(state)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
			switch {
			case tt.moved:
				assert.Equal(t, goodProxyKey(), key)
				assert.NoFileExists(t, legacyPath, "no copy is left in pi's agent dir")
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], "moved the proxy key from "+legacyPath+" to "+keystore.ProxyKeyPath(state))
				assert.NotContains(t, warnings[0], goodProxyKey(), "the key is never printed")
			case tt.state:
				assert.Equal(t, stateKey, key)
				assert.Empty(t, warnings)
			default:
				assert.NotEqual(t, goodProxyKey(), key)
				assert.Regexp(t, `^piauth-proxy-[A-Za-z0-9_-]{43}$`, key)
				assert.Empty(t, warnings)
			}
			if tt.legacy != nil && !tt.moved {
				after, err := os.ReadFile(legacyPath)
				require.NoError(t, err)
				assert.Equal(t, before, after, "the legacy file is left as it was")
			}
			again, err := keystore.ProxyKey(context.Background(), state, agent, warnf)
			require.NoError(t, err)
			assert.Equal(t, key, again)
		})
	}
}
