package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/redisstore"
)

// Store opens the keystore for the agent dir and keyring mode chosen by the
// global flags, with the pool where PIAUTH_STORE (or config.json's "store")
// puts it (storeBackend). The keyring service can be overridden with
// PIAUTH_KEYRING_SERVICE (tests use it to stay apart from each other).
// The store is built once per command run.
func (f *Factory) Store() (*keystore.Store, error) {
	if f.store != nil {
		return f.store, nil
	}
	backend, err := f.storeBackend()
	if err != nil {
		return nil, err
	}
	s, err := f.openStore(backend)
	if err != nil {
		return nil, err
	}
	f.store = s
	return s, nil
}

// FileStore is the agent dir's file store (key-rotation.json), whatever
// PIAUTH_STORE says: `store push` reads it and `store pull` writes it.
func (f *Factory) FileStore() (*keystore.Store, error) { return f.openStore(nil) }

func (f *Factory) openStore(backend keystore.PoolBackend) (*keystore.Store, error) {
	dir, err := f.agentDir()
	if err != nil {
		return nil, err
	}
	mode, err := keystore.ParseKeyringMode(f.KeyringMode)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return keystore.Open(keystore.Options{
		Dir:     dir,
		Mode:    mode,
		Service: f.Getenv("PIAUTH_KEYRING_SERVICE"),
		Warn:    f.IO.ErrOut,
		Now:     f.Now,
		Getenv:  f.Getenv, // the session-bus check: never start a D-Bus daemon
		Backend: backend,
	})
}

// storeOpenTimeout bounds connecting to a shared store at start.
const storeOpenTimeout = 5 * time.Second

// storeBackend is the one place that decides where the pool lives:
// PIAUTH_STORE, else config.json's "store", else key-rotation.json (nil).
// A redis:// or rediss:// URL opens the shared store (redisstore), sealed
// with PIAUTH_STORE_KEY or PIAUTH_STORE_KEY_FILE, pool PIAUTH_STORE_POOL.
// A store that cannot be reached is an error naming it, unless
// PIAUTH_STORE_FALLBACK=file, which warns and uses the local file.
func (f *Factory) storeBackend() (keystore.PoolBackend, error) {
	url, err := f.storeSetting()
	if err != nil || url == "file" {
		return nil, err
	}
	fallback := f.Getenv("PIAUTH_STORE_FALLBACK")
	if fallback != "" && fallback != "file" {
		return nil, usagef("PIAUTH_STORE_FALLBACK=%q: the only fallback is \"file\"", fallback)
	}
	pass, err := redisstore.Passphrase(f.Getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	b, err := redisstore.Open(ctx, redisstore.Options{URL: url, Pool: f.Getenv("PIAUTH_STORE_POOL"), Passphrase: pass, Warn: f.IO.ErrOut})
	if errors.Is(err, keystore.ErrStoreUnavailable) && fallback == "file" {
		dir, _ := f.agentDir()
		f.warnf("%v; using the local pool %s instead (PIAUTH_STORE_FALLBACK=file): cooldowns and refreshes are not shared until the store is back",
			err, filepath.Join(dir, keystore.PoolFileName))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// storeSetting is PIAUTH_STORE, else config.json's "store", else "file".
func (f *Factory) storeSetting() (string, error) {
	if v := f.Getenv("PIAUTH_STORE"); v != "" {
		if !keystore.ValidStore(v) {
			return "", usagef("PIAUTH_STORE=%q: want \"file\" or a redis:// or rediss:// URL", redisstore.MaskURL(v))
		}
		return v, nil
	}
	dir, err := keystore.ResolveConfigDir(f.Getenv)
	if err != nil {
		return "file", nil // no home: nothing to read
	}
	cfg, err := keystore.ReadConfig(filepath.Join(dir, keystore.ConfigFileName))
	if err != nil {
		return "", err
	}
	if cfg.Store != "" {
		return cfg.Store, nil
	}
	return "file", nil
}

// agentDir resolves --dir / PI_CODING_AGENT_DIR / ~/.pi/agent.
func (f *Factory) agentDir() (string, error) {
	return keystore.ResolveDir(f.Dir, f.Getenv)
}

// configKeyringMode is the keyring mode of piauth's config.json
// ($XDG_CONFIG_HOME/piauth/config.json, e.g. {"keyring": "off"}), "auto"
// when the file or the setting is absent. Precedence: --keyring, then
// PIAUTH_KEYRING, then the file, then auto.
func (f *Factory) configKeyringMode() (string, error) {
	dir, err := keystore.ResolveConfigDir(f.Getenv)
	if err != nil {
		return "auto", nil // no home: nothing to read
	}
	cfg, err := keystore.ReadConfig(filepath.Join(dir, keystore.ConfigFileName))
	if err != nil {
		return "", err
	}
	if m, ok := cfg.KeyringMode(); ok {
		return m.String(), nil
	}
	return "auto", nil
}

// ProxyKey is the key clients present to `piauth proxy`: keystore.ProxyKey
// in the state dir that getenv resolves (ResolveStateDir), moving one that
// an earlier piauth left in agentDir. Every command that needs the proxy
// key asks here; getenv is the environment of the proxy that holds it
// (f.Getenv for this one, the service file's for `proxy status`).
// It returns the key and its file.
func (f *Factory) ProxyKey(ctx context.Context, getenv func(string) string, agentDir string) (key, path string, err error) {
	state, err := keystore.ResolveStateDir(getenv)
	if err != nil {
		return "", "", fmt.Errorf("proxy key: %w", err)
	}
	key, err = keystore.ProxyKey(ctx, state, agentDir, f.warnf)
	return key, keystore.ProxyKeyPath(state), err
}
