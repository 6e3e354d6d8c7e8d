package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ConfigFileName is piauth's own settings file in the config dir
// (ResolveConfigDir), e.g. {"keyring": "off"}.
const ConfigFileName = "config.json"

// Config is piauth's config.json. Settings the file does not name are "".
// Precedence (applied by the CLI): flag > environment > Config > default.
type Config struct {
	// Keyring is "auto", "on", "off", or "" when the file does not say
	// (ParseKeyringMode reads it).
	Keyring string
	// Store is where the key pool lives: "file" (key-rotation.json, the
	// default) or a redis:// or rediss:// URL (a pool shared by several
	// machines); "" when the file does not say. PIAUTH_STORE overrides it.
	Store string

	extra map[string]json.RawMessage // unknown fields, for a future writer
}

const (
	configKeyringField = "keyring"
	configStoreField   = "store"
)

// ResolveConfigDir returns piauth's config directory: $XDG_CONFIG_HOME/piauth
// when XDG_CONFIG_HOME is an absolute path, else ~/.config/piauth. getenv is
// the caller's environment.
func ResolveConfigDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "piauth"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("resolve config dir: no home directory ($HOME is not set); set XDG_CONFIG_HOME")
	}
	return filepath.Join(home, ".config", "piauth"), nil
}

// ReadConfig reads config.json at path. A missing file is an empty Config. A
// malformed one (bad JSON, duplicate keys, a wrong type, an unknown keyring
// mode) is a *MalformedError with the position, and the file is left as it
// is. It is read like every file of piauth's (ReadFile: no symlinks, no FIFOs).
func ReadConfig(path string) (*Config, error) {
	d, top, err := readObjectFile(path)
	switch {
	case err != nil:
		return nil, err
	case top == nil:
		return &Config{}, nil // no file yet
	}
	c := &Config{extra: top}
	if raw, ok := top[configKeyringField]; ok {
		ptr := "/" + configKeyringField
		if err := d.decode(ptr, raw, &c.Keyring, `a string ("auto", "on" or "off")`); err != nil {
			return nil, err
		}
		if _, err := ParseKeyringMode(c.Keyring); err != nil || c.Keyring == "" {
			return nil, d.at(ptr, fmt.Sprintf("%q: %q is not a keyring mode (want \"auto\", \"on\" or \"off\")", displayPtr(ptr), c.Keyring))
		}
	}
	if raw, ok := top[configStoreField]; ok {
		ptr := "/" + configStoreField
		if err := d.decode(ptr, raw, &c.Store, `a string ("file" or a redis:// URL)`); err != nil {
			return nil, err
		}
		if !ValidStore(c.Store) {
			return nil, d.at(ptr, fmt.Sprintf("%q: %q is not a store (want \"file\" or a redis:// or rediss:// URL)", displayPtr(ptr), c.Store))
		}
	}
	return c, nil
}

// ValidStore reports whether s names a store: "file", or a redis:// or
// rediss:// URL.
func ValidStore(s string) bool {
	return s == "file" || strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://")
}

// KeyringMode returns the configured keyring mode; ok is false when the file
// does not set one.
func (c *Config) KeyringMode() (mode KeyringMode, ok bool) {
	if c == nil || c.Keyring == "" {
		return ModeAuto, false
	}
	m, err := ParseKeyringMode(c.Keyring)
	return m, err == nil
}
