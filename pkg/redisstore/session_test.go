package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// A conversation pinned on one machine is found on another; the session id
// is stored hashed, with its expiry.
func TestSessionPinShared(t *testing.T) {
	r := testenv.RedisServer(t)
	a, b := open(t, r, testPass), open(t, r, testPass)
	ctx := context.Background()
	fp := keystore.Fingerprint(tok("oat01", 1))
	require.NoError(t, a.SetSessionKey(ctx, "conv-secret-id-42", fp, time.Hour))
	got, err := b.SessionKey(ctx, "conv-secret-id-42")
	require.NoError(t, err)
	assert.Equal(t, fp, got)
	got, err = b.SessionKey(ctx, "another")
	require.NoError(t, err)
	assert.Empty(t, got)

	keys, err := a.rdb.Keys(ctx, "piauth:*").Result()
	require.NoError(t, err)
	assert.Contains(t, keys, a.sessionKey("conv-secret-id-42"))
	assert.NotContains(t, strings.Join(keys, " "), "conv-secret-id-42", "the session id is stored hashed")
	ttl, err := strconv.Atoi(strings.TrimPrefix(r.Do("PTTL", a.sessionKey("conv-secret-id-42")), ":"))
	require.NoError(t, err)
	assert.Greater(t, ttl, 0)
	assert.LessOrEqual(t, ttl, int(time.Hour/time.Millisecond))

	require.NoError(t, b.SetSessionKey(ctx, "conv-secret-id-42", "", 0))
	got, err = a.SessionKey(ctx, "conv-secret-id-42")
	require.NoError(t, err)
	assert.Empty(t, got)
}
