//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWait bounds the wait for a spool lock: writers hold it for one
// write, importers for one rename or one import.
const lockWait = 10 * time.Second

// lockFile takes f's exclusive flock (released when f is closed), waiting
// at most lockWait.
func lockFile(f *os.File) error {
	return flock(context.Background(), f)
}

func flock(ctx context.Context, f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 20*time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("ledger: lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledger: lock %s: still held after %v", f.Name(), lockWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// lockPath creates (0600) and locks the file at path; unlock closes it.
func lockPath(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(ctx, f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
