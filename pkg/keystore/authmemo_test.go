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

// authDoc is an auth.json whose access token is tok (all of one length).
func authDoc(tok string) string {
	return `{"anthropic":{"type":"oauth","access":"` + tok + `","refresh":"r","expires":4102444800000}}`
}

func TestAuthMemo(t *testing.T) {
	// File times are on the wall clock (openTest's Store clock is not).
	old := time.Now().Add(-time.Hour).Truncate(time.Second) // long before: remembered
	recent := time.Now().Add(-time.Second)                  // in the racy window: not
	a, b := fakeTok("oat01", 1), fakeTok("oat01", 2)
	inPlace := func(t *testing.T, path, content string, mtime time.Time) {
		writeFile(t, path, content, 0o600)
		require.NoError(t, os.Chtimes(path, mtime, mtime))
	}
	tests := []struct {
		name    string
		written time.Time // auth.json's time when first read
		change  func(t *testing.T, s *Store)
		want    string // the token the second Auth returns
		wantErr error
	}{
		{"unchanged: remembered (a same-size rewrite that forges the old time goes unseen)", old,
			func(t *testing.T, s *Store) { inPlace(t, s.AuthPath(), authDoc(b), old) }, a, nil},
		{"rewritten in place, time moved", old,
			func(t *testing.T, s *Store) { inPlace(t, s.AuthPath(), authDoc(b), old.Add(time.Second)) }, b, nil},
		{"read within the racy window: read again, even with the same size and time", recent,
			func(t *testing.T, s *Store) { inPlace(t, s.AuthPath(), authDoc(b), recent) }, b, nil},
		{"replaced by a rename, as pi and piauth write, same time", old,
			func(t *testing.T, s *Store) {
				tmp := filepath.Join(s.Dir(), "auth.json.tmp")
				inPlace(t, tmp, authDoc(b), old)
				require.NoError(t, os.Rename(tmp, s.AuthPath()))
			}, b, nil},
		{"grown, same time", old,
			func(t *testing.T, s *Store) { inPlace(t, s.AuthPath(), authDoc(b+"longer"), old) }, b + "longer", nil},
		{"removed", old,
			func(t *testing.T, s *Store) { require.NoError(t, os.Remove(s.AuthPath())) }, "", ErrNotFound},
		{"swapped for a symlink", old,
			func(t *testing.T, s *Store) {
				target := filepath.Join(t.TempDir(), "elsewhere.json")
				inPlace(t, target, authDoc(b), old)
				require.NoError(t, os.Remove(s.AuthPath()))
				require.NoError(t, os.Symlink(target, s.AuthPath()))
			}, "", ErrMalformed},
		{"written by UpdateAuth", old,
			func(t *testing.T, s *Store) {
				require.NoError(t, s.UpdateAuth(context.Background(), func(cur *Credential) (*Credential, error) {
					next := *cur
					next.Access = b
					return &next, nil
				}))
			}, b, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t, ModeOff, nil)
			inPlace(t, s.AuthPath(), authDoc(a), tt.written)
			c, err := s.Auth()
			require.NoError(t, err)
			require.Equal(t, a, c.Access)
			tt.change(t, s)
			c, err = s.Auth()
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Access)
		})
	}
}

func TestAuthMemoCopies(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	writeFile(t, s.AuthPath(), `{"anthropic":{"type":"oauth","access":"`+fakeTok("oat01", 1)+`","expires":1,"note":"kept"}}`, 0o600)
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(s.AuthPath(), old, old))
	first, err := s.Auth()
	require.NoError(t, err)
	first.Access = "changed by the caller"
	require.NoError(t, first.SetField("note", nil))
	require.NoError(t, first.SetField("added", 1))
	again, err := s.Auth()
	require.NoError(t, err)
	assert.Equal(t, fakeTok("oat01", 1), again.Access, "a caller's change to its copy stays its own")
	assert.JSONEq(t, `"kept"`, string(again.Field("note")))
	assert.Nil(t, again.Field("added"))
}
