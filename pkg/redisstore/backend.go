// Package redisstore keeps piauth's key pool and its state in Redis, so that
// several machines (or several proxies) share one pool: one refresh per
// account, one cooldown per rate-limited key, one active key. Secrets are
// sealed with AES-256-GCM under a key derived (scrypt) from a passphrase
// every machine holds; Redis never sees a token in clear.
//
// Keys, all under Prefix(pool) = "piauth:{NAME}:":
//
//	piauth:{NAME}:meta   the key derivation (salt, cost) and a sealed check value
//	piauth:{NAME}:pool   key-rotation.json's document with its secrets sealed
//	piauth:{NAME}:lock   the pool lock (refreshes, and writes that must not interleave)
//	piauth:{NAME}:learned the Claude Code version the service asked for (never lowered)
//	piauth:{NAME}:session:<hash> the key a conversation is pinned to (expires)
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/piauth/piauth/pkg/keystore"
)

// Options configures Open.
type Options struct {
	URL        string // redis://[user:pass@]host:port/db or rediss://…
	Pool       string // pool name ("" = DefaultPool)
	Passphrase string // the sealing passphrase (Passphrase reads it)
	// ScryptN is the scrypt cost used when this call creates the store's
	// meta (0 = DefaultScryptN); an existing store keeps its own.
	ScryptN int
	// Backoff is the wait before each retry of a write while Redis cannot
	// be reached (nil = 50 ms doubling to 800 ms: five retries).
	Backoff []time.Duration
	Warn    io.Writer // one-line warnings; nil discards
}

// Backend is a keystore.PoolBackend in Redis. It is safe for concurrent use.
type Backend struct {
	url     string // masked
	name    string
	prefix  string
	rdb     *redis.Client
	holder  string
	warn    io.Writer
	backoff []time.Duration
	pass    string // kept to re-derive when the store's meta is replaced (wiped, pushed again)

	closeOnce sync.Once

	mu         sync.Mutex
	sealer     *sealer
	kdf        kdf
	metaRaw    string         // the meta the sealer was derived from
	lastRaw    string         // the stored document last decoded
	lastPool   *keystore.Pool // and its pool (never handed out: clones are)
	downWarned bool
	downAt     time.Time                    // last failure to reach Redis (zero: up)
	pending    []func(*keystore.Pool) error // changes kept while Redis was away, in order
	keptWarned bool
	flushing   bool          // a flusher goroutine is running
	closed     chan struct{} // closed by Close
	learned    string        // the learnt Claude Code version last read
	learnedAt  time.Time     // when (zero: never)
}

var _ keystore.PoolBackend = (*Backend)(nil)

// go-redis logs connection failures on its own (a process-wide logger);
// piauth reports them itself, once, in its own words.
var quietOnce sync.Once

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

type meta struct {
	V int `json:"v"`
	kdf
	Check string `json:"check"`
}

// Open connects to the store, checks that it answers (an error wrapping
// keystore.ErrStoreUnavailable names the masked URL otherwise), creates its
// meta on first use and checks the passphrase against it (an error wrapping
// keystore.ErrWrongStoreKey when it is not the store's).
func Open(ctx context.Context, opts Options) (*Backend, error) {
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	if opts.Pool == "" {
		opts.Pool = DefaultPool
	}
	if err := CheckPoolName(opts.Pool); err != nil {
		return nil, err
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", MaskURL(opts.URL), err)
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	ro.MaxRetries = 1
	ro.DialerRetries, ro.DialerRetryTimeout = 1, 10*time.Millisecond // our own retries decide (Backoff)
	ro.DisableIdentity = true                                        // no CLIENT SETINFO: older servers and proxies refuse it
	b := &Backend{url: MaskURL(opts.URL), name: opts.Pool, prefix: Prefix(opts.Pool), rdb: redis.NewClient(ro),
		warn: opts.Warn, backoff: opts.Backoff, pass: opts.Passphrase, closed: make(chan struct{})}
	if b.warn == nil {
		b.warn = io.Discard
	}
	if b.backoff == nil {
		b.backoff = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	}
	host, _ := os.Hostname()
	b.holder = host + ":" + strconv.Itoa(os.Getpid())
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		_ = b.rdb.Close()
		return nil, fmt.Errorf("store %s: %w: %v", b.url, keystore.ErrStoreUnavailable, err)
	}
	if err := b.loadMeta(ctx, opts); err != nil {
		_ = b.rdb.Close()
		return nil, err
	}
	return b, nil
}

// loadMeta reads (or, for a new store, writes) the meta and derives the key.
func (b *Backend) loadMeta(ctx context.Context, opts Options) error {
	for range 2 {
		raw, err := b.rdb.Get(ctx, b.key("meta")).Bytes()
		if errors.Is(err, redis.Nil) {
			created, err := b.createMeta(ctx, opts)
			if err != nil || created {
				return err
			}
			continue // another machine created it first: use theirs
		}
		if err != nil {
			return b.unavailable("read the store meta", err)
		}
		return b.useMeta(string(raw))
	}
	return fmt.Errorf("store %s: %s keeps changing", b.url, b.key("meta"))
}

func (b *Backend) createMeta(ctx context.Context, opts Options) (bool, error) {
	k, err := newKDF(opts.ScryptN)
	if err != nil {
		return false, err
	}
	s, err := k.sealer(opts.Passphrase)
	if err != nil {
		return false, err
	}
	check, err := s.seal(checkPlain, "check")
	if err != nil {
		return false, err
	}
	data, _ := json.Marshal(meta{V: 1, kdf: k, Check: check})
	ok, err := b.rdb.SetNX(ctx, b.key("meta"), data, 0).Result()
	if err != nil {
		return false, b.unavailable("create the store meta", err)
	}
	if ok {
		b.mu.Lock()
		b.sealer, b.kdf, b.metaRaw = s, k, string(data)
		b.mu.Unlock()
	}
	return ok, nil
}

// useMeta derives the sealing key from the stored meta raw and checks it.
func (b *Backend) useMeta(raw string) error {
	var m meta
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return fmt.Errorf("store %s: %s is not piauth's: %w", b.url, b.key("meta"), err)
	}
	s, err := m.sealer(b.pass)
	if err != nil {
		return fmt.Errorf("store %s: %w", b.url, err)
	}
	if got, err := s.open(m.Check, "check"); err != nil || got != checkPlain {
		return fmt.Errorf("store %s (prefix %s): %w", b.url, b.prefix, keystore.ErrWrongStoreKey)
	}
	b.mu.Lock()
	b.sealer, b.kdf, b.metaRaw = s, m.kdf, raw
	b.mu.Unlock()
	return nil
}

// sealerFor returns the sealer for the stored meta raw, deriving it again
// when the meta was replaced since (a store wiped and pushed again).
func (b *Backend) sealerFor(raw string) (*sealer, error) {
	b.mu.Lock()
	s, same := b.sealer, raw == b.metaRaw
	b.mu.Unlock()
	if same {
		return s, nil
	}
	if err := b.useMeta(raw); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sealer, nil
}

func (b *Backend) key(name string) string { return b.prefix + name }

// Describe names the store: "redis://host:6379/0 (prefix piauth:{default}:)".
func (b *Backend) Describe() string { return b.url + " (prefix " + b.prefix + ")" }

// Prefix is the prefix of every key of this store.
func (b *Backend) Prefix() string { return b.prefix }

// KDF describes the key derivation: "scrypt N=32768 r=8 p=1".
func (b *Backend) KDF() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%s N=%d r=%d p=%d", b.kdf.Name, b.kdf.N, b.kdf.R, b.kdf.P)
}

// LockHolder names the process holding the pool lock ("" when free).
func (b *Backend) LockHolder(ctx context.Context) (string, error) {
	v, err := b.rdb.Get(ctx, b.key("lock")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", b.unavailable("read the pool lock", err)
	}
	return holderName(v), nil
}

// Close closes the connections (changes still kept for a Redis that is
// away are dropped).
func (b *Backend) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return b.rdb.Close()
}

// unavailable wraps a failure to talk to Redis: ErrStoreUnavailable for a
// connection problem, the error as it is for a reply Redis gave.
func (b *Backend) unavailable(what string, err error) error {
	if isDown(err) {
		return fmt.Errorf("store %s: %s: %w: %v", b.url, what, keystore.ErrStoreUnavailable, err)
	}
	return fmt.Errorf("store %s: %s: %w", b.url, what, err)
}

// isDown tells a connection failure from a reply of the server.
func isDown(err error) bool {
	var re redis.Error
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &re):
		return redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "READONLY") || redis.HasErrorPrefix(err, "MASTERDOWN")
	}
	return true
}
