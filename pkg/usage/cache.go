package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// CacheFileName is the cache's file in piauth's state dir.
const CacheFileName = "usage-cache.json"

// CachePath is the cache file in the state dir of getenv's environment
// (keystore.ResolveStateDir).
func CachePath(getenv func(string) string) (string, error) {
	dir, err := keystore.ResolveStateDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, CacheFileName), nil
}

// Entry is what the cache holds for one key, keyed by its fingerprint. It
// never holds a token.
type Entry struct {
	// FetchedAt is when Report was fetched; zero when never.
	FetchedAt time.Time `json:"fetched_at"`
	Report    *Report   `json:"report,omitempty"`
	// RetryAt is the time before which the endpoint asked not to be asked
	// again for this key (retry-after); zero when it did not.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

type cacheFile struct {
	Version int              `json:"version"`
	Keys    map[string]Entry `json:"keys"`
}

// Cache is the JSON file of the last answers, shared by every piauth
// process: read without a lock, rewritten atomically (mode 0600) under
// keystore.Lock.
type Cache struct {
	Path string
}

// Load returns the entries by fingerprint; a missing file is an empty
// cache. An unreadable file is an error (the caller may go on without it).
func (c *Cache) Load() (map[string]Entry, error) {
	data, err := os.ReadFile(c.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("usage cache: %w", err)
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("usage cache %s: %w", c.Path, err)
	}
	if f.Keys == nil {
		f.Keys = map[string]Entry{}
	}
	return f.Keys, nil
}

// Store writes entries over the cached ones (other keys are kept), under
// the file's lock. A cache that cannot be read is replaced.
func (c *Cache) Store(ctx context.Context, entries map[string]Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o700); err != nil {
		return fmt.Errorf("usage cache: %w", err)
	}
	unlock, err := keystore.Lock(ctx, c.Path, keystore.LockOptions{})
	if err != nil {
		return fmt.Errorf("usage cache: %w", err)
	}
	defer func() { _ = unlock() }()
	cur, err := c.Load()
	if err != nil {
		cur = map[string]Entry{}
	}
	for fp, e := range entries {
		cur[fp] = e
	}
	data, err := json.MarshalIndent(cacheFile{Version: 1, Keys: cur}, "", "  ")
	if err != nil {
		return err
	}
	return keystore.WriteFileAtomic(c.Path, append(data, '\n'), 0o600)
}
