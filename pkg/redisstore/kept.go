package redisstore

// Changes kept while Redis is away: a long-running process (the proxy, a
// chat) goes on with the pool as last read, honours its own changes (a
// cooldown it recorded) and writes them, each once and in order, with the
// first write that reaches Redis again.

import (
	"context"
	"fmt"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// keep applies fn to the pool last read while Redis cannot be reached and
// queues it: this process goes on with the change (a cooldown is honoured
// here), and the queued changes are written, each once, with the next write
// that reaches Redis. Without a pool read before, it returns cause.
func (b *Backend) keep(fn func(p *keystore.Pool) error, cause error) (*keystore.Pool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastPool == nil {
		return nil, cause
	}
	p := b.lastPool.Clone()
	if err := fn(p); err != nil {
		return nil, err
	}
	b.lastPool, b.lastRaw = p.Clone(), keptRaw
	b.pending = append(b.pending, fn)
	if !b.flushing {
		b.flushing = true
		go b.flusher()
	}
	if !b.keptWarned {
		b.keptWarned = true
		fmt.Fprintf(b.warn, "piauth: warning: %v; key state is kept in this process and written when the store is back\n", cause)
	}
	return p, nil
}

func (b *Backend) takePending() []func(*keystore.Pool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pending
	b.pending = nil
	return p
}

// putPending puts back changes a failed write did not store.
func (b *Backend) putPending(p []func(*keystore.Pool) error) {
	if len(p) == 0 {
		return
	}
	b.mu.Lock()
	b.pending = append(p, b.pending...)
	b.mu.Unlock()
}

// keptRaw marks the cached pool as changed here, matching no stored pool.
const keptRaw = "\x00kept"

// downFor is how long after a failure Redis is not asked again by reads
// (the pool last read serves them) and writes skip their retries.
const downFor = time.Second

func (b *Backend) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if down {
		b.downAt = time.Now()
		return
	}
	b.downAt, b.keptWarned = time.Time{}, false
}

func (b *Backend) isDown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.downAt.IsZero() && time.Since(b.downAt) < downFor
}

// flusher writes the kept changes once Redis answers again, trying every
// downFor, even when this process reads and writes nothing meanwhile.
func (b *Backend) flusher() {
	t := time.NewTicker(downFor)
	defer t.Stop()
	for {
		select {
		case <-b.closed:
			return
		case <-t.C:
		}
		b.mu.Lock()
		if len(b.pending) == 0 { // under the lock: keep starts a new flusher after this
			b.flushing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b.flush(ctx)
		cancel()
	}
}

// flush writes the changes kept while Redis was away (after a read found it
// back) and reports whether it wrote any; a failure leaves them queued for
// the next write.
func (b *Backend) flush(ctx context.Context) bool {
	b.mu.Lock()
	n := len(b.pending)
	b.mu.Unlock()
	if n == 0 {
		return false
	}
	if _, err := b.update(ctx, func(*keystore.Pool) error { return nil }, false); err != nil {
		return false
	}
	fmt.Fprintf(b.warn, "piauth: store %s: %d kept %s written\n", b.url, n, plural(n, "change", "changes"))
	return true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (b *Backend) hasPending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) > 0
}
