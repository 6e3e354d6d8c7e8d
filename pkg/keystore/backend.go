package keystore

import (
	"context"
	"errors"
	"time"
)

// PoolBackend keeps the key pool and its per-key state somewhere other than
// key-rotation.json (pkg/redisstore keeps it in Redis, shared by several
// machines). A Store with no backend (Options.Backend nil) is the file store:
// key-rotation.json under its lock, as pi's seed extension reads it. auth.json
// (pi's own login) always stays in the agent dir.
type PoolBackend interface {
	// Describe names the backend for humans, secrets masked
	// ("redis://:****@host:6379/0 (prefix piauth:{default}:)").
	Describe() string
	// ReadPool returns the current pool; an empty backend is an empty pool.
	ReadPool(ctx context.Context) (*Pool, error)
	// UpdatePool runs fn on a fresh copy of the pool and stores the result
	// atomically. Without exclusive, fn may run more than once (an optimistic
	// transaction retried on conflict, or a change kept while the store is
	// away and replayed when it is back), so it must only change the pool.
	// With exclusive, the backend first takes its lock, shared by every
	// machine, and runs fn exactly once while holding it (a refresh calls
	// the token endpoint inside fn: only one machine may do that). An
	// error wrapping ErrStoreUnavailable means nothing was written.
	UpdatePool(ctx context.Context, exclusive bool, fn func(p *Pool) error) (*Pool, error)
	// Close releases the backend's connections.
	Close() error
}

// ErrStoreUnavailable means the pool's backend (Redis) could not be reached:
// nothing was written, and no token was refreshed.
var ErrStoreUnavailable = errors.New("store unavailable")

// ErrWrongStoreKey means the sealing key (PIAUTH_STORE_KEY or its key file)
// is not the one the shared store was sealed with.
var ErrWrongStoreKey = errors.New("wrong store key: the store was sealed with another PIAUTH_STORE_KEY")

// Backend is the Store's pool backend, nil for the file store.
func (s *Store) Backend() PoolBackend { return s.backend }

// Location names where the pool lives: key-rotation.json's path, or the
// backend's Describe.
func (s *Store) Location() string {
	if s.backend != nil {
		return s.backend.Describe()
	}
	return s.PoolPath()
}

// ParsePool parses key-rotation.json's bytes (name is used in errors): what a
// backend stores is the same document, so unknown fields survive it too.
func ParsePool(name string, data []byte) (*Pool, error) { return parsePool(name, data) }

// Encode renders the pool as key-rotation.json's bytes, exactly what the file
// store would write.
func (p *Pool) Encode() ([]byte, error) { return p.marshal() }

// Clone returns a deep copy of the pool.
func (p *Pool) Clone() *Pool { return p.clone() }

// updateBackend is UpdatePool for a Store with a backend.
func (s *Store) updateBackend(ctx context.Context, fn func(p *Pool) error) (*Pool, error) {
	return s.backend.UpdatePool(ctx, false, fn)
}

// updateBothBackend is UpdateBoth for a Store with a backend: auth.json under
// its lock, the pool under the backend's exclusive lock, fn run once with
// both held. auth.json is written (and its lock released) before the pool.
func (s *Store) updateBothBackend(ctx context.Context, fn func(auth **Credential, p *Pool) error) (*Pool, error) {
	unlockAuth, err := s.lock(ctx, s.AuthPath())
	if err != nil {
		return nil, err
	}
	defer unlockAuth()
	return s.backend.UpdatePool(ctx, true, func(p *Pool) error {
		top, cur, rawAuth, err := s.readAuth()
		if err != nil {
			return err
		}
		next := cur
		if err := fn(&next, p); err != nil {
			return err
		}
		if err := s.writeAuth(top, cur, next, rawAuth); err != nil {
			return err
		}
		return unlockAuth()
	})
}

// VersionBackend is a PoolBackend that also keeps what piauth learnt from
// the service (learned.json's Claude Code version), so every machine sharing
// the pool sends the version the service last asked for.
type VersionBackend interface {
	// ClaudeCodeVersion is the version learnt ("" when none).
	ClaudeCodeVersion(ctx context.Context) (string, error)
	// RaiseClaudeCodeVersion records v unless the same or a newer version is
	// recorded (never lowered) and returns the version now recorded.
	RaiseClaudeCodeVersion(ctx context.Context, v string, now time.Time) (string, error)
}

// SessionBackend is a PoolBackend that also keeps which key a conversation
// is pinned to (rotate.Pin's Key), so a conversation continued through
// another proxy or machine stays on its key and its prompt cache.
type SessionBackend interface {
	// SessionKey is the fingerprint session is pinned to ("" when none).
	SessionKey(ctx context.Context, session string) (string, error)
	// SetSessionKey pins session to fp for ttl; fp "" removes the pin.
	SetSessionKey(ctx context.Context, session, fp string, ttl time.Duration) error
}
