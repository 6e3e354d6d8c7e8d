package keystore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/when"
)

// LockOptions tunes Lock. Zero values take the defaults.
type LockOptions struct {
	Stale   time.Duration // a lock whose mtime is older than this is taken over (20 s)
	Refresh time.Duration // how often the holder touches the lock's mtime (5 s)
	Poll    time.Duration // how often a waiter retries (20 ms)
	Wait    time.Duration // the longest Lock waits, whatever ctx says (DefaultLockWait)
}

// DefaultLockWait bounds every wait for a lock: a lock that is neither released
// nor stale by then is reported (LockTimeoutError) instead of waited on forever.
const DefaultLockWait = 30 * time.Second

// DefaultLockStale is how long a lock may go untouched before it counts as left
// behind by a dead process. piauth's holders touch it every 5 s and pi's every
// 15 s, so a live lock is never this old; with it below DefaultLockWait, a lock
// left by a process killed just now is taken over within one wait.
const DefaultLockStale = 20 * time.Second

func (o LockOptions) withDefaults() LockOptions {
	if o.Stale <= 0 {
		o.Stale = DefaultLockStale
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.Wait <= 0 || o.Wait > DefaultLockWait {
		o.Wait = DefaultLockWait
	}
	return o
}

// LockTimeoutError reports a lock that could not be taken: still held when the
// wait ended, or stale but impossible to remove. errors.Is(err, ErrLockTimeout)
// is true. Its message names the lock and the command that clears it.
type LockTimeoutError struct {
	Path   string        // the lock directory (TARGET.lock)
	Waited time.Duration // how long Lock waited
	Age    time.Duration // how long ago the lock was last touched (negative: in the future)
	Cause  error         // ctx's cause, or why a stale lock could not be removed
}

func (e *LockTimeoutError) Error() string {
	fix := "rmdir " + shellQuote(e.Path)
	if fi, err := os.Lstat(e.Path); err == nil && !fi.IsDir() {
		fix = "rm " + shellQuote(e.Path)
	} else if ents, err := os.ReadDir(e.Path); err == nil && len(ents) > 0 {
		fix = "rm -r " + shellQuote(e.Path)
	}
	msg := fmt.Sprintf("lock %s: %v after %s (last touched %s ago); if no piauth or pi process is using it, clear it with: %s",
		e.Path, ErrLockTimeout, when.Duration(e.Waited), when.Duration(e.Age), fix)
	if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrLockTimeout) true.
func (e *LockTimeoutError) Is(target error) bool { return target == ErrLockTimeout }

// Unwrap returns the cause (ctx's, or the removal error).
func (e *LockTimeoutError) Unwrap() error { return e.Cause }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Lock takes the proper-lockfile compatible lock on target: the directory
// target+".lock", created with mkdir. A lock whose mtime is older than Stale
// (or more than Stale in the future: a foreign clock) is taken over. While
// held, the lock's mtime is refreshed every Refresh. Lock waits until ctx is
// done or Wait (at most DefaultLockWait) has passed, and then returns a
// *LockTimeoutError (errors.Is ErrLockTimeout) naming the lock and how to
// clear it; a stale lock that cannot be removed fails at once the same way.
// The returned unlock stops the refresher and removes the directory.
func Lock(ctx context.Context, target string, opts LockOptions) (unlock func() error, err error) {
	opts = opts.withDefaults()
	dir := target + ".lock"
	start := time.Now()
	deadline := time.NewTimer(opts.Wait)
	defer deadline.Stop()
	fail := func(cause error) error {
		return &LockTimeoutError{Path: dir, Waited: time.Since(start), Age: lockAge(dir), Cause: cause}
	}
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
		took, err := takeOver(dir, opts.Stale)
		if err != nil {
			return nil, fail(err)
		}
		if took {
			return startRefresher(dir, opts.Refresh), nil
		}
		t := time.NewTimer(opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fail(context.Cause(ctx))
		case <-deadline.C:
			t.Stop()
			return nil, fail(nil)
		case <-t.C:
		}
	}
}

// takeOver replaces a stale lock directory by a fresh one. A short-lived guard
// directory serialises competing takers, so two waiters never both "take over"
// (one would otherwise delete the other's fresh lock). A stale lock that cannot
// be removed (not empty, not ours) is an error: waiting would not help.
func takeOver(dir string, stale time.Duration) (bool, error) {
	if !isStale(dir, stale) {
		return false, nil
	}
	guard := dir + ".takeover"
	if err := os.Mkdir(guard, 0o700); err != nil {
		if isStale(guard, stale) { // a taker died inside the guard
			_ = os.Remove(guard)
		}
		return false, nil
	}
	defer os.Remove(guard)
	if !isStale(dir, stale) { // re-check under the guard
		return false, nil
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("the lock is stale but cannot be removed: %w", err)
	}
	return os.Mkdir(dir, 0o700) == nil, nil
}

// lockAge is how long ago dir was last touched (0 when it is gone).
func lockAge(dir string) time.Duration {
	fi, err := os.Lstat(dir)
	if err != nil {
		return 0
	}
	return time.Since(fi.ModTime())
}

func isStale(dir string, stale time.Duration) bool {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false
	}
	age := time.Since(fi.ModTime())
	return age > stale || age < -stale
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
