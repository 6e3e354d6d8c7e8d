package keystore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

const (
	// ProxyKeyFileName is the file in piauth's state dir (ResolveStateDir)
	// holding the key clients present to `piauth proxy`.
	ProxyKeyFileName = "proxy-key"
	// ProxyKeyPrefix starts every proxy key, so it is never taken for an
	// Anthropic secret.
	ProxyKeyPrefix = "piauth-proxy-"
	// proxyKeyRandBytes is the entropy of a generated proxy key.
	proxyKeyRandBytes = 32
)

// ProxyKeyPath is the proxy key's file in stateDir.
func ProxyKeyPath(stateDir string) string { return filepath.Join(stateDir, ProxyKeyFileName) }

// ProxyKey returns the proxy key stored in stateDir, piauth's own state dir
// (ResolveStateDir), creating a random one (ProxyKeyPrefix + 32 random
// bytes, base64url) on first use. Read and creation happen under the file's
// lock, so two proxies starting at once agree on one key.
//
// Earlier versions kept the key in pi's agent dir, which holds only what pi
// and the seed share. When stateDir has no key file and agentDir ("": none)
// holds a sound one, that key moves to stateDir (the same key, so clients
// set up with it keep working) and warnf says so; a legacy file that is not
// sound is left where it is, untouched.
//
// The file gets the rules of piauth's other files: it is read with readFile
// (never follows a symlink, never blocks on a FIFO, bounded size) and it must
// be a regular file owned by the current user that no one else can read. A
// file breaking a rule, or not holding a well-formed key, is replaced by a new
// key with a warning on warnf: a key others could read may have leaked.
func ProxyKey(ctx context.Context, stateDir, agentDir string, warnf func(format string, a ...any)) (string, error) {
	path := ProxyKeyPath(stateDir)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	unlock, err := Lock(ctx, path, LockOptions{})
	if err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	defer unlock() //nolint:errcheck // the lock directory goes stale anyway

	key, why, err := readProxyKey(path)
	switch {
	case err != nil:
		return "", err
	case key != "":
		return key, nil
	case why != "":
		warnf("%s %s; generating a new proxy key (clients need the new one: piauth proxy --show-key)", path, why)
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// WriteFileAtomic refuses to replace a symlink; remove the link
			// itself (never its target).
			if err := os.Remove(path); err != nil {
				return "", fmt.Errorf("proxy key: %w", err)
			}
		}
	default:
		if key, err = moveLegacyProxyKey(path, agentDir, warnf); key != "" || err != nil {
			return key, err
		}
	}
	raw := make([]byte, proxyKeyRandBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	key = ProxyKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	if err := WriteFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	return key, nil
}

// moveLegacyProxyKey moves a sound proxy key from agentDir to path (which
// does not exist; its lock is held): written to path first, then removed
// from agentDir, so the key is never without a copy. It returns "" when
// agentDir holds no sound key.
func moveLegacyProxyKey(path, agentDir string, warnf func(format string, a ...any)) (string, error) {
	if agentDir == "" {
		return "", nil
	}
	legacy := ProxyKeyPath(agentDir)
	if filepath.Clean(legacy) == filepath.Clean(path) {
		return "", nil
	}
	key, _, err := readProxyKey(legacy)
	if err != nil || key == "" {
		return "", nil //nolint:nilerr // an unreadable legacy file is left alone; a new key is made
	}
	if err := WriteFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	if err := os.Remove(legacy); err != nil && !errors.Is(err, fs.ErrNotExist) {
		warnf("moved the proxy key to %s but could not remove the old copy: %v", path, err)
		return key, nil
	}
	warnf("moved the proxy key from %s to %s (pi's agent dir holds only what pi shares); the key is the same", legacy, path)
	return key, nil
}

// readProxyKey reads the key at path. It returns the key when the file is
// sound; ("", why, nil) when it must be replaced (why is "" when it is
// simply missing); an error only for failures that replacing would not fix.
func readProxyKey(path string) (key, why string, err error) {
	var wideMode fs.FileMode
	data, err := readFile(path, func(_ string, mode fs.FileMode) { wideMode = mode })
	var malformed *MalformedError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", nil
	case errors.As(err, &malformed): // symlink, FIFO, directory, too large
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", "is a symlink", nil
		}
		return "", malformed.Msg, nil
	case err != nil:
		return "", "", fmt.Errorf("proxy key: %w", err)
	case wideMode != 0:
		return "", fmt.Sprintf("is readable by other users (mode %04o)", wideMode), nil
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", "", fmt.Errorf("proxy key: %w", err)
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return "", fmt.Sprintf("is owned by another user (uid %d)", uid), nil
	}
	key = strings.TrimSpace(string(data))
	if !validProxyKey(key) {
		return "", "does not hold a proxy key", nil
	}
	return key, "", nil
}

// validProxyKey reports whether key is ProxyKeyPrefix followed by at least
// 16 base64url characters (and nothing else: it goes into HTTP headers).
func validProxyKey(key string) bool {
	rest, ok := strings.CutPrefix(key, ProxyKeyPrefix)
	if !ok || len(rest) < 16 {
		return false
	}
	for _, c := range []byte(rest) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ownerUID is the owner of fi where the platform has one (Unix: the Uid of
// syscall.Stat_t, read without naming the type so that every platform
// builds); ok is false elsewhere.
func ownerUID(fi fs.FileInfo) (uid int, ok bool) {
	if os.Getuid() < 0 { // Windows
		return 0, false
	}
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0, false
	}
	f := v.FieldByName("Uid")
	if !f.IsValid() || !f.CanUint() {
		return 0, false
	}
	return int(f.Uint()), true
}
