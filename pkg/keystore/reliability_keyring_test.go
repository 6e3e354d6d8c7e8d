package keystore

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// downKeyring answers every call with ErrKeyringUnavailable.
type downKeyring struct{}

func (downKeyring) Get(string) (string, error) {
	return "", fmt.Errorf("no answer: %w", ErrKeyringUnavailable)
}
func (downKeyring) Set(string, string) error {
	return fmt.Errorf("no answer: %w", ErrKeyringUnavailable)
}
func (downKeyring) Delete(string) error { return fmt.Errorf("no answer: %w", ErrKeyringUnavailable) }

// A required keyring (ModeOn) that does not answer is an error for
// KeyringIndexErr (`key list --keyring on` exits 1); ModeAuto warns once and
// goes on from the file.
func TestReliabilityKeyringIndexRequired(t *testing.T) {
	for _, mode := range []KeyringMode{ModeOn, ModeAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			var warn bytes.Buffer
			s, err := Open(Options{Dir: t.TempDir(), Mode: mode, Keyring: downKeyring{}, Warn: &warn})
			require.NoError(t, err)
			for range 2 {
				fps, ok, err := s.KeyringIndexErr()
				assert.Nil(t, fps)
				assert.False(t, ok)
				if mode == ModeOn {
					assert.ErrorIs(t, err, ErrKeyringUnavailable)
				} else {
					assert.NoError(t, err)
				}
				_, ok = s.KeyringIndex()
				assert.False(t, ok)
			}
			if mode == ModeAuto {
				assert.Equal(t, 1, strings.Count(warn.String(), "warning"), warn.String())
			} else {
				assert.Empty(t, warn.String())
			}
		})
	}
}
