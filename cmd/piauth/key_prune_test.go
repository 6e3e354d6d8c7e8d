package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

func TestKeyPruneAndResetMarks(t *testing.T) {
	k1, k2, k3 := testKey("api03", 1), testKey("oat01", 2), testKey("api03", 3)
	keys := []string{k1, k2, k3}
	state := func() map[string]any {
		return map[string]any{"version": 1, "states": map[string]any{
			keystore.Fingerprint(k1): map[string]any{"revoked": true},
			keystore.Fingerprint(k2): map[string]any{"disabled": true},
		}}
	}
	pool := func(t *testing.T, dir string) *keystore.Pool {
		t.Helper()
		s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
		require.NoError(t, err)
		p, err := s.Pool()
		require.NoError(t, err)
		return p
	}
	tests := []struct {
		name      string
		args      []string
		wantOut   string
		wantErr   string
		wantKeys  []string
		wantState []keystore.State
	}{
		{name: "prune deletes only revoked keys", args: []string{"key", "prune"},
			wantOut: "removed " + keystore.Mask(k1) + "\n2 keys left\n", wantKeys: []string{k2, k3},
			wantState: []keystore.State{keystore.StateDisabled, keystore.StateReady}},
		{name: "reset keeps the marks", args: []string{"key", "reset"}, wantErr: "is still disabled", wantKeys: keys,
			wantState: []keystore.State{keystore.StateRevoked, keystore.StateDisabled, keystore.StateReady}},
		{name: "reset --disabled", args: []string{"key", "reset", "--disabled"}, wantOut: "brought back 1 key", wantKeys: keys,
			wantState: []keystore.State{keystore.StateRevoked, keystore.StateReady, keystore.StateReady}},
		{name: "reset --revoked --disabled", args: []string{"key", "reset", "--revoked", "--disabled"}, wantOut: "brought back 2 keys", wantKeys: keys,
			wantState: []keystore.State{keystore.StateActive, keystore.StateReady, keystore.StateReady}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePoolFile(t, dir, keys, state())
			r := piauthRun{dir: dir}.run(t, tt.args...)
			require.Equal(t, 0, r.code, r.err)
			assert.Contains(t, r.out, tt.wantOut)
			assert.Contains(t, r.err, tt.wantErr)
			assertNoSecret(t, keys, r.out, r.err)
			p := pool(t, dir)
			assert.Equal(t, tt.wantKeys, p.Keys)
			for i, want := range tt.wantState {
				assert.Equal(t, want, p.Status(i, time.Now()).State, "key %d", i+1)
			}
		})
	}

	t.Run("nothing to prune", func(t *testing.T) {
		dir := t.TempDir()
		writePoolFile(t, dir, []string{k2}, nil)
		r := piauthRun{dir: dir}.run(t, "key", "prune")
		require.Equal(t, 0, r.code, r.err)
		assert.Contains(t, r.err, "no revoked keys")
		assert.Equal(t, []string{k2}, pool(t, dir).Keys)
	})
}
