package keystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// LockOptions tunes Lock. Zero values take the defaults.
type LockOptions struct {
	Stale   time.Duration // a lock whose mtime is older than this is taken over (30 s)
	Refresh time.Duration // how often the holder touches the lock's mtime (5 s)
	Poll    time.Duration // how often a waiter retries (20 ms)
}

func (o LockOptions) withDefaults() LockOptions {
	if o.Stale <= 0 {
		o.Stale = 30 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 20 * time.Millisecond
	}
	return o
}

// Lock takes the proper-lockfile compatible lock on target: the directory
// target+".lock", created with mkdir. A lock whose mtime is older than Stale is
// taken over. While held, the lock's mtime is refreshed every Refresh. Lock
// waits until ctx is done and then returns an error wrapping ErrLockTimeout.
// The returned unlock stops the refresher and removes the directory.
func Lock(ctx context.Context, target string, opts LockOptions) (unlock func() error, err error) {
	opts = opts.withDefaults()
	dir := target + ".lock"
	for {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return startRefresher(dir, opts.Refresh), nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			// First write into a fresh agent dir: create it as pi does (0700).
			if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
				return nil, fmt.Errorf("lock %s: %w", dir, err)
			}
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if takeOver(dir, opts.Stale) {
			return startRefresher(dir, opts.Refresh), nil
		}
		t := time.NewTimer(opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock %s: %w (%w)", dir, ErrLockTimeout, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// takeOver replaces a stale lock directory by a fresh one. A short-lived guard
// directory serialises competing takers, so two waiters never both "take over"
// (one would otherwise delete the other's fresh lock).
func takeOver(dir string, stale time.Duration) bool {
	if !isStale(dir, stale) {
		return false
	}
	guard := dir + ".takeover"
	if err := os.Mkdir(guard, 0o700); err != nil {
		if isStale(guard, stale) { // a taker died inside the guard
			_ = os.Remove(guard)
		}
		return false
	}
	defer os.Remove(guard)
	if !isStale(dir, stale) { // re-check under the guard
		return false
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return os.Mkdir(dir, 0o700) == nil
}

func isStale(dir string, stale time.Duration) bool {
	fi, err := os.Stat(dir)
	return err == nil && time.Since(fi.ModTime()) > stale
}

func startRefresher(dir string, every time.Duration) func() error {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				now := time.Now()
				_ = os.Chtimes(dir, now, now)
			}
		}
	}()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			close(stop)
			<-done
			if rerr := os.Remove(dir); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("unlock %s: %w", dir, rerr)
			}
		})
		return err
	}
}
