//go:build unix

package keystore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every wait for a lock ends: a live, foreign or unremovable lock is reported
// with its path and the command that clears it.
func TestLockWaitIsBounded(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, lock string)
		wait     time.Duration
		wantFix  string
		maxTaken time.Duration
	}{
		{name: "held and kept fresh", wait: 300 * time.Millisecond, wantFix: "rmdir '", maxTaken: 2 * time.Second,
			setup: func(t *testing.T, lock string) {
				unlock, err := Lock(context.Background(), lock[:len(lock)-len(".lock")], LockOptions{Refresh: 50 * time.Millisecond})
				require.NoError(t, err)
				t.Cleanup(func() { _ = unlock() })
			}},
		{name: "foreign file in place of the lock", wait: 200 * time.Millisecond, wantFix: "rm '", maxTaken: 2 * time.Second,
			setup: func(t *testing.T, lock string) { writeFile(t, lock, "x", 0o600) }},
		{name: "stale lock that cannot be removed fails at once", wait: 20 * time.Second, wantFix: "rm -r '", maxTaken: 2 * time.Second,
			setup: func(t *testing.T, lock string) {
				require.NoError(t, os.Mkdir(lock, 0o700))
				writeFile(t, filepath.Join(lock, "junk"), "x", 0o600)
				old := time.Now().Add(-time.Hour)
				require.NoError(t, os.Chtimes(lock, old, old))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "auth.json")
			tt.setup(t, target+".lock")
			start := time.Now()
			_, err := Lock(context.Background(), target, LockOptions{Wait: tt.wait})
			taken := time.Since(start)
			require.ErrorIs(t, err, ErrLockTimeout)
			var lerr *LockTimeoutError
			require.ErrorAs(t, err, &lerr)
			assert.Equal(t, target+".lock", lerr.Path)
			assert.Contains(t, err.Error(), target+".lock")
			assert.Contains(t, err.Error(), tt.wantFix+target+".lock'")
			assert.Less(t, taken, tt.maxTaken)
		})
	}
}

func TestLockDefaultsAndCap(t *testing.T) {
	o := LockOptions{}.withDefaults()
	assert.Equal(t, DefaultLockWait, o.Wait)
	assert.Equal(t, 30*time.Second, o.Wait)
	assert.Less(t, o.Stale, o.Wait, "a lock left by a process killed now is taken over within one wait")
	assert.Equal(t, DefaultLockWait, LockOptions{Wait: time.Hour}.withDefaults().Wait, "never more than 30 s")
}

// A lock whose mtime lies far in the future (a foreign clock, a hand-made
// lock) counts as stale instead of blocking forever.
func TestLockTakesOverFutureLock(t *testing.T) {
	target := filepath.Join(t.TempDir(), "key-rotation.json")
	require.NoError(t, os.Mkdir(target+".lock", 0o700))
	future := time.Now().Add(24 * time.Hour)
	require.NoError(t, os.Chtimes(target+".lock", future, future))
	unlock, err := Lock(context.Background(), target, LockOptions{Wait: time.Second})
	require.NoError(t, err)
	require.NoError(t, unlock())
}

// A FIFO in place of one of our files never blocks: not at the Lstat check,
// and not when it is swapped in after it (openRegular, O_NONBLOCK + fstat).
func TestFIFONeverBlocks(t *testing.T) {
	s, _ := openTest(t, ModeOff, nil)
	tests := []struct {
		name string
		path string
		read func() error
	}{
		{name: "auth.json", path: s.AuthPath(), read: func() error { _, err := s.Auth(); return err }},
		{name: "key-rotation.json", path: s.PoolPath(), read: func() error { _, err := s.Pool(); return err }},
		{name: "config.json", path: filepath.Join(s.Dir(), ConfigFileName), read: func() error {
			_, err := ReadConfig(filepath.Join(s.Dir(), ConfigFileName))
			return err
		}},
		{name: "learned.json", path: filepath.Join(s.Dir(), LearnedFileName), read: func() error {
			_, err := ReadLearned(filepath.Join(s.Dir(), LearnedFileName))
			return err
		}},
		{name: "opened after the check", path: filepath.Join(s.Dir(), "swapped"), read: func() error {
			_, _, err := openRegular(filepath.Join(s.Dir(), "swapped"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, syscall.Mkfifo(tt.path, 0o600))
			t.Cleanup(func() { _ = os.Remove(tt.path) })
			done := make(chan error, 1)
			go func() { done <- tt.read() }()
			select {
			case err := <-done:
				require.ErrorIs(t, err, ErrMalformed)
				assert.Contains(t, err.Error(), "is not a regular file")
			case <-time.After(5 * time.Second):
				t.Fatal("reading a FIFO blocked") // the goroutine stays stuck in open()
			}
		})
	}
}

// A directory others can write to is refused, as ssh does, before anything is
// read, locked or written; 0700 and 0755 are fine.
func TestUnsafeAgentDir(t *testing.T) {
	tests := []struct {
		name    string
		mode    os.FileMode
		owner   int // -1 = keep
		wantErr bool
		wantFix string
	}{
		{name: "0700", mode: 0o700, owner: -1},
		{name: "0755", mode: 0o755, owner: -1},
		{name: "group-writable", mode: 0o770, owner: -1, wantErr: true, wantFix: "chmod go-w '"},
		{name: "world-writable", mode: 0o777, owner: -1, wantErr: true, wantFix: "chmod go-w '"},
		{name: "world-writable sticky", mode: 0o777 | os.ModeSticky, owner: -1, wantErr: true, wantFix: "chmod go-w '"},
		{name: "foreign owner", mode: 0o700, owner: 4242, wantErr: true, wantFix: "chown "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.owner >= 0 && os.Getuid() != 0 {
				t.Skip("chown to another user needs root")
			}
			dir := filepath.Join(t.TempDir(), "agent")
			require.NoError(t, os.Mkdir(dir, 0o700))
			writeFile(t, filepath.Join(dir, PoolFileName), `{"keys": []}`, 0o600)
			require.NoError(t, os.Chmod(dir, tt.mode))
			if tt.owner >= 0 {
				require.NoError(t, os.Chown(dir, tt.owner, tt.owner))
			}
			s, err := Open(Options{Dir: dir, Mode: ModeOff})
			require.NoError(t, err)
			ctx := context.Background()
			errs := map[string]error{}
			_, errs["Auth"] = s.Auth()
			_, errs["Pool"] = s.Pool()
			_, errs["UpdatePool"] = s.UpdatePool(ctx, func(p *Pool) error { p.Add(fakeTok("oat01", 1), KeyState{}); return nil })
			errs["UpdateAuth"] = s.UpdateAuth(ctx, func(*Credential) (*Credential, error) { return &Credential{Type: "api_key", Key: "k"}, nil })
			_, errs["UpdateBoth"] = s.UpdateBoth(ctx, func(**Credential, *Pool) error { return nil })
			for op, err := range errs {
				if !tt.wantErr {
					if !errors.Is(err, ErrNotFound) { // Auth before UpdateAuth: no entry yet
						assert.NoError(t, err, op)
					}
					continue
				}
				require.ErrorIs(t, err, ErrUnsafeDir, op)
				assert.Contains(t, err.Error(), dir, op)
				assert.Contains(t, err.Error(), tt.wantFix, op)
				var uerr *UnsafeDirError
				require.True(t, errors.As(err, &uerr), op)
				assert.Contains(t, uerr.Fix, dir)
			}
			if tt.wantErr {
				ents, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Len(t, ents, 1, "nothing created, locked or written")
			}
		})
	}
}
