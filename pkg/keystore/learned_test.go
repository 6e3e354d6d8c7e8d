package keystore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveStateDir(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{"override", map[string]string{"PIAUTH_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s", false},
		{"xdg", map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/piauth", false},
		{"relative xdg is ignored", map[string]string{"XDG_STATE_HOME": "x", "HOME": "/h"}, "/h/.local/state/piauth", false},
		{"home", map[string]string{"HOME": "/h"}, "/h/.local/state/piauth", false},
		{"nothing", map[string]string{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveStateDir(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				assert.ErrorContains(t, err, "PIAUTH_STATE_DIR")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRaiseClaudeCodeVersion(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "state", LearnedFileName)

	l, err := ReadLearned(path)
	require.NoError(t, err, "a missing file is empty")
	assert.Empty(t, l.ClaudeCodeVersion)

	steps := []struct{ raise, want string }{
		{"2.1.280", "2.1.280"},
		{"2.1.251", "2.1.280"}, // never lowered
		{"2.1.300", "2.1.300"},
		{"2.1.300", "2.1.300"},
		{"2.2.0", "2.2.0"},
	}
	for _, s := range steps {
		got, err := RaiseClaudeCodeVersion(ctx, path, s.raise, now)
		require.NoError(t, err)
		assert.Equal(t, s.want, got, "raise %s", s.raise)
	}
	l, err = ReadLearned(path)
	require.NoError(t, err)
	assert.Equal(t, "2.2.0", l.ClaudeCodeVersion)
	assert.True(t, now.Equal(l.VersionLearnedAt))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	_, err = RaiseClaudeCodeVersion(ctx, path, "not-a-version", now)
	assert.Error(t, err)
}

func TestLearnedKeepsUnknownFieldsAndRefusesMalformed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, LearnedFileName)
	require.NoError(t, os.WriteFile(path, []byte(`{"future": {"x": 1}, "claude_code_version": "2.1.251"}`), 0o600))
	_, err := RaiseClaudeCodeVersion(ctx, path, "2.1.280", time.Now())
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"future"`)
	assert.Contains(t, string(data), `"2.1.280"`)

	bad := []byte("{\n  \"claude_code_version\": 7\n}")
	require.NoError(t, os.WriteFile(path, bad, 0o600))
	_, err = RaiseClaudeCodeVersion(ctx, path, "2.1.300", time.Now())
	assert.ErrorIs(t, err, ErrMalformed)
	assert.ErrorContains(t, err, path+":2:")
	after, _ := os.ReadFile(path)
	assert.Equal(t, bad, after, "a malformed file is left untouched")
}
