package keystore

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockExcludesAndTimesOut(t *testing.T) {
	target := filepath.Join(t.TempDir(), "auth.json")
	unlock, err := Lock(context.Background(), target, LockOptions{})
	require.NoError(t, err)
	assert.DirExists(t, target+".lock")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Lock(ctx, target, LockOptions{})
	require.ErrorIs(t, err, ErrLockTimeout)
	assert.Contains(t, err.Error(), target+".lock")

	require.NoError(t, unlock())
	require.NoError(t, unlock(), "unlock is idempotent")
	assert.NoDirExists(t, target+".lock")
}

func TestLockTakesOverStaleLock(t *testing.T) {
	target := filepath.Join(t.TempDir(), "key-rotation.json")
	require.NoError(t, os.Mkdir(target+".lock", 0o700))
	old := time.Now().Add(-31 * time.Second)
	require.NoError(t, os.Chtimes(target+".lock", old, old))

	unlock, err := Lock(context.Background(), target, LockOptions{})
	require.NoError(t, err)
	fi, err := os.Stat(target + ".lock")
	require.NoError(t, err)
	assert.True(t, fi.ModTime().After(old), "fresh lock after takeover")
	assert.NoDirExists(t, target+".lock.takeover")
	require.NoError(t, unlock())
}

// Goroutines racing for one stale lock: exactly one takes it over (nobody
// releases, so a second winner could only come from a double takeover).
func TestLockStaleTakeoverIsExclusive(t *testing.T) {
	target := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.Mkdir(target+".lock", 0o700))
	old := time.Now().Add(-time.Minute)
	require.NoError(t, os.Chtimes(target+".lock", old, old))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var unlocks []func() error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := Lock(ctx, target, LockOptions{Poll: time.Millisecond})
			if err != nil {
				assert.ErrorIs(t, err, ErrLockTimeout)
				return
			}
			mu.Lock()
			unlocks = append(unlocks, unlock)
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Len(t, unlocks, 1)
	for _, u := range unlocks {
		assert.NoError(t, u())
	}
}

func TestLockRefreshesMtime(t *testing.T) {
	target := filepath.Join(t.TempDir(), "f")
	unlock, err := Lock(context.Background(), target, LockOptions{Refresh: 10 * time.Millisecond})
	require.NoError(t, err)
	defer unlock()
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(target+".lock", old, old))
	require.Eventually(t, func() bool {
		fi, err := os.Stat(target + ".lock")
		return err == nil && fi.ModTime().After(old.Add(time.Minute))
	}, 10*time.Second, 5*time.Millisecond, "holder keeps the lock fresh")
}
