package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

const testPass = "correct horse battery staple"

// tok is a fake OAuth access token (or refresh token with kind "ort01").
func tok(kind string, n int) string {
	return fmt.Sprintf("sk-ant-%s-%s", kind, strings.Repeat(fmt.Sprintf("%02d", n), 20))
}

// open opens a Backend on r with a cheap key derivation (tests only).
func open(t testing.TB, r *testenv.Redis, pass string) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Options{URL: r.URL(), Passphrase: pass, ScryptN: 1 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// seed stores a pool of n OAuth keys with refresh tokens.
func seed(t testing.TB, b *Backend, n int) []string {
	t.Helper()
	keys := make([]string, n)
	_, err := b.UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
		for i := range n {
			keys[i] = tok("oat01", i+1)
			p.Add(keys[i], keystore.KeyState{Label: fmt.Sprintf("k%d", i+1), Refresh: tok("ort01", i+1), Expires: 4102444800000})
		}
		return nil
	})
	require.NoError(t, err)
	return keys
}
