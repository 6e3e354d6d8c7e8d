package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/piauth/piauth/pkg/keystore"
)

var _ keystore.SessionBackend = (*Backend)(nil)

// sessionKey is the Redis key of a session's pin: the session id is hashed,
// so conversation ids never reach Redis in clear.
func (b *Backend) sessionKey(session string) string {
	sum := sha256.Sum256([]byte(session))
	return b.key("session:" + hex.EncodeToString(sum[:16]))
}

// SessionKey is the fingerprint of the key session is pinned to, "" when
// none (or it expired).
func (b *Backend) SessionKey(ctx context.Context, session string) (string, error) {
	fp, err := b.rdb.Get(ctx, b.sessionKey(session)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", b.unavailable("read a session's key", err)
	}
	return fp, nil
}

// SetSessionKey pins session to the key with fingerprint fp for ttl
// (renewed by each call); fp "" removes the pin.
func (b *Backend) SetSessionKey(ctx context.Context, session, fp string, ttl time.Duration) error {
	var err error
	if fp == "" {
		err = b.rdb.Del(ctx, b.sessionKey(session)).Err()
	} else {
		err = b.rdb.Set(ctx, b.sessionKey(session), fp, ttl).Err()
	}
	if err != nil {
		return b.unavailable("record a session's key", err)
	}
	return nil
}
