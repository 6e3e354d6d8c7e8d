package redisstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/keystore"
)

// The pool lock: SET NX PX with a random value, renewed while held,
// released by compare-and-delete; a holder that died is outlived by its
// expiry (LockTTL).
var (
	renewScript   = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`)
	releaseScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
)

// Lock timings.
const (
	// LockTTL is how long the lock outlives a holder that stopped renewing it.
	LockTTL = 15 * time.Second
	// LockWait bounds every wait for the lock (keystore.DefaultLockWait).
	LockWait = keystore.DefaultLockWait
)

// heldLock is a taken lock: renewed until release.
type heldLock struct {
	value string
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// lock takes the pool lock, waiting (with jitter) while another holder has
// it, at most LockWait or until ctx ends.
func (b *Backend) lock(ctx context.Context) (*heldLock, error) {
	buf := make([]byte, 16)
	if _, err := crand.Read(buf); err != nil {
		return nil, err
	}
	value := b.holder + "/" + hex.EncodeToString(buf)
	start := time.Now()
	wait := time.Millisecond
	for {
		ok, err := b.rdb.SetNX(ctx, b.key("lock"), value, LockTTL).Result()
		if err != nil {
			return nil, b.unavailable("take the pool lock", err)
		}
		if ok {
			l := &heldLock{value: value, stop: make(chan struct{}), done: make(chan struct{})}
			go b.renew(l)
			return l, nil
		}
		if time.Since(start) > LockWait {
			holder, _ := b.rdb.Get(ctx, b.key("lock")).Result()
			return nil, fmt.Errorf("%s: %w after %s (held by %s; it expires by itself %s after its holder stops)",
				b.key("lock"), keystore.ErrLockTimeout, when.Latency(time.Since(start)), holderName(holder), LockTTL)
		}
		t := time.NewTimer(wait + time.Duration(rand.Int64N(int64(wait))))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for %s: %w", b.key("lock"), context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, 25*time.Millisecond)
	}
}

func (b *Backend) renew(l *heldLock) {
	defer close(l.done)
	t := time.NewTicker(LockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), LockTTL/3)
			_ = renewScript.Run(ctx, b.rdb, []string{b.key("lock")}, l.value, LockTTL.Milliseconds()).Err()
			cancel()
		}
	}
}

// unlock stops renewing and deletes the lock if it is still ours.
func (b *Backend) unlock(l *heldLock) {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, b.rdb, []string{b.key("lock")}, l.value).Err()
	})
}

// holderName is the host/pid part of a lock value.
func holderName(v string) string {
	if v == "" {
		return "nobody now"
	}
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == '/' {
			return v[:i]
		}
	}
	return v
}
