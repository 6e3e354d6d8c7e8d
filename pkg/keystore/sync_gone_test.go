package keystore

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
)

// A missing or emptied key-rotation.json never empties the REAL keyring: it is
// the backup RestoreFromKeyring rebuilds the file from.
func TestSyncKeepsKeyringWhenPoolGone(t *testing.T) {
	tests := []struct {
		name        string
		lose        func(t *testing.T, path string)
		wantMissing bool
	}{
		{name: "file removed", wantMissing: true, lose: func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }},
		{name: "no keys", lose: func(t *testing.T, path string) { writeFile(t, path, `{"keys": []}`, 0o600) }},
		{name: "empty object", lose: func(t *testing.T, path string) { writeFile(t, path, `{}`, 0o600) }},
		{name: "keys null", lose: func(t *testing.T, path string) { writeFile(t, path, `{"keys": null}`, 0o600) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := testenv.KeyringService(t)
			ctx := context.Background()
			s, err := Open(Options{Dir: t.TempDir(), Mode: ModeOn, Service: svc})
			require.NoError(t, err)
			keys := []string{fakeTok("oat01", 11), fakeTok("api03", 12), fakeTok("oat01", 13)}
			_, err = s.UpdatePool(ctx, func(p *Pool) error {
				for _, k := range keys {
					p.Add(k, KeyState{Label: "l"})
				}
				return nil
			})
			require.NoError(t, err)
			before := testenv.SecretToolUsers(t, svc)
			require.Len(t, before, 4)

			tt.lose(t, s.PoolPath())
			added, removed, err := s.SyncKeyring(ctx)
			require.ErrorIs(t, err, ErrPoolGone)
			var gone *PoolGoneError
			require.ErrorAs(t, err, &gone)
			assert.Equal(t, tt.wantMissing, gone.Missing)
			assert.Equal(t, 3, gone.InKeyring)
			assert.Contains(t, err.Error(), s.PoolPath())
			assert.Zero(t, added)
			assert.Zero(t, removed)
			assert.ElementsMatch(t, before, testenv.SecretToolUsers(t, svc), "no keyring item removed")

			p, err := s.RestoreFromKeyring(ctx)
			require.NoError(t, err)
			assert.Equal(t, keys, p.Keys)
		})
	}
}

// With nothing on either side, sync has nothing to do and succeeds.
func TestSyncEmptyBothSides(t *testing.T) {
	svc := testenv.KeyringService(t)
	s, err := Open(Options{Dir: t.TempDir(), Mode: ModeOn, Service: svc})
	require.NoError(t, err)
	added, removed, err := s.SyncKeyring(context.Background())
	require.NoError(t, err)
	assert.Zero(t, added+removed)
}
