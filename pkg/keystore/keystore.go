// Package keystore owns piauth's files in pi's agent directory: auth.json (pi's
// format, guarded by pi's proper-lockfile directory lock), key-rotation.json (the
// seed extension's key pool plus piauth's per-key state) and the OS keyring mirror
// of every pooled secret. All writes are atomic and every read-modify-write runs
// under a cross-process lock.
package keystore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/secret"
)

// File names inside the agent directory and the default keyring service.
const (
	AuthFileName   = "auth.json"
	PoolFileName   = "key-rotation.json"
	KeyringService = "piauth"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound           = errors.New("not found")
	ErrKeyringUnavailable = errors.New("keyring unavailable")
	ErrMalformed          = errors.New("malformed file")
	ErrLockTimeout        = errors.New("timed out waiting for lock")
)

// MalformedError reports a file piauth refuses to read or rewrite. Error() is
// "PATH:LINE:COL: MSG", or "PATH: MSG" when no position applies (Line == 0).
type MalformedError struct {
	Path      string
	Line, Col int
	Msg       string
}

func (e *MalformedError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// ResolveDir returns the agent directory: flagValue if set, else
// $PI_CODING_AGENT_DIR, else ~/.pi/agent. A leading "~/" is expanded with
// $HOME (%USERPROFILE% on Windows). The environment comes from getenv, the
// caller's (a map in tests), never from the process directly.
func ResolveDir(flagValue string, getenv func(string) string) (string, error) {
	dir := flagValue
	if dir == "" {
		dir = getenv("PI_CODING_AGENT_DIR")
	}
	if dir == "" {
		dir = "~/.pi/agent"
	}
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		home := getenv("HOME")
		if home == "" {
			home = getenv("USERPROFILE")
		}
		if home == "" {
			return "", errors.New("resolve agent dir: no home directory ($HOME is not set); set PI_CODING_AGENT_DIR or pass --dir")
		}
		dir = filepath.Join(home, strings.TrimPrefix(dir, "~"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve agent dir: %w", err)
	}
	return abs, nil
}

// Mask hides a secret: the "sk-ant-xxx-" prefix, the first 2 characters of the
// rest, "…" and the last 4. Tokens shorter than 16 characters become "****".
func Mask(tok string) string { return secret.Mask(tok) }

// Fingerprint is a stable, non-secret name for a token: the first 12 hex
// characters of its SHA-256.
func Fingerprint(tok string) string { return secret.Fingerprint(tok) }

// KeyKind tells OAuth access tokens from console API keys (secret.Kind).
type KeyKind = secret.Kind

// Key kinds.
const (
	KindOAuth = secret.KindOAuth
	KindAPI   = secret.KindAPI
)

// KindOf classifies a token: "sk-ant-api…" is KindAPI, anything else
// KindOAuth (secret.KindOf, the one rule).
func KindOf(tok string) KeyKind { return secret.KindOf(tok) }

// ExpiredAt reports whether an epoch-ms expiry has passed at now. 0 means
// unknown and counts as valid: only the API can tell (pi does the same).
// This is the one expiry rule for auth.json and pooled keys.
func ExpiredAt(expiresMs int64, now time.Time) bool {
	return expiresMs != 0 && now.UnixMilli() >= expiresMs
}
