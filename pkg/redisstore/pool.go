package redisstore

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // an equality check of the stored pool, not a secret
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/keystore"
)

// fencedSet writes the pool only while the lock is ours, or, when the lock
// has expired meanwhile, only if nobody changed the pool since we read it
// (so a refresh's new tokens are kept whenever that is safe).
var fencedSet = redis.NewScript(`
local l = redis.call("get", KEYS[1])
local cur = redis.call("get", KEYS[2]) or ""
if l == ARGV[1] or (l == false and cur == ARGV[3]) then
  redis.call("set", KEYS[2], ARGV[2])
  return 1
end
return 0`)

// errLocked: another process holds the pool lock; wait for it.
var errLocked = errors.New("pool locked")

// ErrStoreWiped means the store lost its data (its meta is gone: a restart
// without persistence, a FLUSHALL): nothing is written then, so an empty
// store is never taken for an empty pool. `piauth store push` restores it.
var ErrStoreWiped = errors.New("the store lost its data (a restart without persistence?); run piauth store push from a machine that has the pool")

// fnError carries fn's own error out of a transaction (never retried).
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// ReadPool returns the stored pool. While Redis cannot be reached (or has
// lost its data) it returns the pool it last read, with one warning, so
// requests go on with tokens that are still valid; writes are kept in this
// process meanwhile (kept.go) and refreshes fail.
func (b *Backend) ReadPool(ctx context.Context) (*keystore.Pool, error) {
	if b.isDown() {
		if p := b.cached(nil); p != nil {
			return p, nil
		}
	}
	vals, err := b.rdb.MGet(ctx, b.key("pool"), b.key("meta")).Result()
	switch {
	case err != nil:
		err = b.unavailable("read the pool", err)
		if errors.Is(err, keystore.ErrStoreUnavailable) {
			b.setDown(true)
			if p := b.cached(err); p != nil {
				return p, nil
			}
		}
		return nil, err
	case vals[1] == nil:
		err = fmt.Errorf("store %s: %w: %w", b.url, keystore.ErrStoreUnavailable, ErrStoreWiped)
		if p := b.cached(err); p != nil {
			return p, nil
		}
		return nil, err
	}
	b.up()
	if b.flush(ctx) || b.hasPending() {
		return b.cached(nil), nil // what was just written, or this process's view until it is
	}
	raw, _ := vals[0].(string)
	return b.decode(raw, vals[1].(string))
}

// cached is the last pool read, warning once (when err is set) that it is
// used.
func (b *Backend) cached(err error) *keystore.Pool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastPool == nil {
		return nil
	}
	if err != nil && !b.downWarned {
		b.downWarned = true
		fmt.Fprintf(b.warn, "piauth: warning: %v; using the pool as last read (no refresh, no state written until it is back)\n", err)
	}
	return b.lastPool.Clone()
}

func (b *Backend) up() {
	b.mu.Lock()
	b.downAt = time.Time{}
	if b.downWarned {
		b.downWarned = false
		fmt.Fprintf(b.warn, "piauth: store %s answers again\n", b.url)
	}
	b.mu.Unlock()
}

// decode opens a stored document; the last one decoded is remembered so
// that an unchanged pool costs no decryption.
func (b *Backend) decode(raw, metaRaw string) (*keystore.Pool, error) {
	s, err := b.sealerFor(metaRaw)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.lastPool != nil && raw == b.lastRaw {
		p := b.lastPool.Clone()
		b.mu.Unlock()
		return p, nil
	}
	b.mu.Unlock()
	p := &keystore.Pool{States: map[string]*keystore.KeyState{}}
	if raw != "" {
		clear, err := openPool([]byte(raw), s)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", b.key("pool"), err)
		}
		if p, err = keystore.ParsePool(b.key("pool"), clear); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	b.lastRaw, b.lastPool = raw, p.Clone()
	b.mu.Unlock()
	return p, nil
}

// remember caches what was just written as the last pool read.
func (b *Backend) remember(raw string, p *keystore.Pool) {
	b.mu.Lock()
	b.lastRaw, b.lastPool = raw, p.Clone()
	b.mu.Unlock()
}

// encode seals p; same is true when p encodes as old did (nothing to write).
func (b *Backend) encode(old, p *keystore.Pool) (out []byte, same bool, err error) {
	clear, err := p.Encode()
	if err != nil {
		return nil, false, err
	}
	if prev, err := old.Encode(); err == nil && bytes.Equal(prev, clear) {
		return nil, true, nil
	}
	b.mu.Lock()
	s := b.sealer
	b.mu.Unlock()
	out, err = sealPool(clear, s)
	return out, false, err
}

// UpdatePool changes the pool atomically (keystore.PoolBackend). Without
// exclusive it is an optimistic transaction (read, fn, then a Lua
// compare-and-set that also checks the lock), retried when another writer
// got there first and waiting while a holder of the lock (a refresh) is at
// work; while Redis cannot be reached it is retried with Backoff, then kept
// in this process and written when Redis is back (keep). With exclusive,
// fn runs once under the pool lock, and fails with
// keystore.ErrStoreUnavailable when Redis cannot be reached.
func (b *Backend) UpdatePool(ctx context.Context, exclusive bool, fn func(p *keystore.Pool) error) (*keystore.Pool, error) {
	if exclusive {
		return b.updateLocked(ctx, fn)
	}
	return b.update(ctx, fn, true)
}

// update is the optimistic UpdatePool; keepDown says whether a change that
// cannot reach Redis is kept in this process (keep) or fails.
func (b *Backend) update(ctx context.Context, fn func(p *keystore.Pool) error, keepDown bool) (*keystore.Pool, error) {
	start, down, wait := time.Now(), 0, time.Millisecond
	if b.isDown() || b.hasPending() {
		down = len(b.backoff) // retried already: one attempt, then kept in memory
	}
	for {
		pending := b.takePending()
		p, err := b.tryUpdate(ctx, func(p *keystore.Pool) error {
			for _, f := range pending {
				_ = f(p) // each ran once already, on the pool as last read
			}
			return fn(p)
		})
		if err != nil {
			b.putPending(pending)
		}
		var fe fnError
		switch {
		case err == nil:
			b.setDown(false)
			return p, nil
		case errors.As(err, &fe):
			return nil, fe.err
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case errors.Is(err, redis.TxFailedErr), errors.Is(err, errLocked):
			if time.Since(start) > LockWait {
				return nil, fmt.Errorf("update %s: %w after %s", b.key("pool"), keystore.ErrLockTimeout, when.Latency(time.Since(start)))
			}
			if err := sleep(ctx, wait+time.Duration(rand.Int64N(int64(wait)))); err != nil {
				return nil, err
			}
			wait = min(2*wait, 20*time.Millisecond)
		case isDown(err) && down < len(b.backoff):
			if err := sleep(ctx, b.backoff[down]); err != nil {
				return nil, err
			}
			down++
		case isDown(err) && keepDown:
			b.setDown(true)
			return b.keep(fn, b.unavailable("write the pool", err))
		default:
			return nil, b.unavailable("write the pool", err)
		}
	}
}

// casSet writes the pool only if it is still what was read (by SHA-1,
// an equality check, not a secret), no one holds the lock and the meta is
// still there: the compare-and-set half of an optimistic transaction, in one
// round trip (a WATCH/MULTI/EXEC/UNWATCH costs four).
var casSet = redis.NewScript(`
if redis.call("exists", KEYS[3]) == 0 then return -2 end
if redis.call("exists", KEYS[2]) == 1 then return -1 end
local cur = redis.call("get", KEYS[1]) or ""
if redis.sha1hex(cur) ~= ARGV[1] then return 0 end
redis.call("set", KEYS[1], ARGV[2])
return 1`)

// tryUpdate is one optimistic transaction: read, fn, compare-and-set.
func (b *Backend) tryUpdate(ctx context.Context, fn func(p *keystore.Pool) error) (*keystore.Pool, error) {
	vals, err := b.rdb.MGet(ctx, b.key("pool"), b.key("lock"), b.key("meta")).Result()
	if err != nil {
		return nil, err
	}
	if vals[2] == nil {
		return nil, fnError{fmt.Errorf("store %s: %w", b.url, ErrStoreWiped)}
	}
	if vals[1] != nil {
		return nil, errLocked
	}
	raw, _ := vals[0].(string)
	p, err := b.decode(raw, vals[2].(string))
	if err != nil {
		return nil, fnError{err}
	}
	old := p.Clone()
	if err := fn(p); err != nil {
		return nil, fnError{err}
	}
	out, same, err := b.encode(old, p)
	if err != nil {
		return nil, fnError{err}
	}
	if same {
		return p, nil
	}
	sum := sha1.Sum([]byte(raw))
	n, err := casSet.Run(ctx, b.rdb, []string{b.key("pool"), b.key("lock"), b.key("meta")}, hex.EncodeToString(sum[:]), out).Int()
	switch {
	case err != nil:
		return nil, err
	case n == -2:
		return nil, fnError{fmt.Errorf("store %s: %w", b.url, ErrStoreWiped)}
	case n == -1:
		return nil, errLocked
	case n == 0:
		return nil, redis.TxFailedErr // another writer got there first: retry
	}
	b.remember(string(out), p)
	return p, nil
}

// updateLocked runs fn once under the pool lock and writes its result
// before releasing the lock; the write is retried while Redis is away (the
// result may hold a refreshed token that exists nowhere else).
func (b *Backend) updateLocked(ctx context.Context, fn func(p *keystore.Pool) error) (*keystore.Pool, error) {
	l, err := b.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer b.unlock(l)
	vals, err := b.rdb.MGet(ctx, b.key("pool"), b.key("meta")).Result()
	if err != nil {
		return nil, b.unavailable("read the pool", err)
	}
	if vals[1] == nil {
		return nil, fmt.Errorf("store %s: %w", b.url, ErrStoreWiped)
	}
	raw, _ := vals[0].(string)
	p, err := b.decode(raw, vals[1].(string))
	if err != nil {
		return nil, err
	}
	old := p.Clone()
	if err := fn(p); err != nil {
		return nil, err
	}
	out, same, err := b.encode(old, p)
	if err != nil || same {
		return p, err
	}
	// Not the caller's ctx: a cancelled command must still store tokens
	// that were already rotated.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LockTTL)
	defer cancel()
	for try := 0; ; try++ {
		n, err := fencedSet.Run(wctx, b.rdb, []string{b.key("lock"), b.key("pool")}, l.value, out, raw).Int()
		switch {
		case err == nil && n == 1:
			b.remember(string(out), p)
			return p, nil
		case err == nil:
			return nil, fmt.Errorf("store %s: the pool lock expired and the pool changed meanwhile; this change was not written", b.url)
		case isDown(err) && wctx.Err() == nil:
			_ = sleep(wctx, b.backoff[min(try, len(b.backoff)-1)])
		default:
			return nil, b.unavailable("write the pool", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
