package main

import (
	"path/filepath"

	"github.com/piauth/piauth/pkg/keystore"
)

// Store opens the keystore for the agent dir and keyring mode chosen by the
// global flags. The keyring service can be overridden with
// PIAUTH_KEYRING_SERVICE (tests use it to stay apart from each other).
// Opening is cheap; the store is built once per command run.
func (f *Factory) Store() (*keystore.Store, error) {
	if f.store != nil {
		return f.store, nil
	}
	dir, err := f.agentDir()
	if err != nil {
		return nil, err
	}
	mode, err := keystore.ParseKeyringMode(f.KeyringMode)
	if err != nil {
		return nil, usagef("%v", err)
	}
	s, err := keystore.Open(keystore.Options{
		Dir:     dir,
		Mode:    mode,
		Service: f.Getenv("PIAUTH_KEYRING_SERVICE"),
		Warn:    f.IO.ErrOut,
		Now:     f.Now,
		Getenv:  f.Getenv, // the session-bus check: never start a D-Bus daemon
	})
	if err != nil {
		return nil, err
	}
	f.store = s
	return s, nil
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
