package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/mod/semver"
)

// LearnedFileName is the file in piauth's state dir that holds what piauth
// learnt from the service (for example the Claude Code version a model
// requires), shared by every piauth process of the user.
const LearnedFileName = "learned.json"

// ResolveStateDir returns piauth's own state directory: $PIAUTH_STATE_DIR,
// else $XDG_STATE_HOME/piauth, else ~/.local/state/piauth. Pi's agent dir
// holds only what pi and the seed share; everything else of piauth's lives
// here (created 0700 on first write). getenv is the caller's environment.
func ResolveStateDir(getenv func(string) string) (string, error) {
	if d := getenv("PIAUTH_STATE_DIR"); d != "" {
		return filepath.Abs(d)
	}
	if d := getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "piauth"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("resolve state dir: no home directory ($HOME is not set); set PIAUTH_STATE_DIR")
	}
	return filepath.Join(home, ".local", "state", "piauth"), nil
}

// Learned is what piauth learnt from the service. Unknown fields survive a
// rewrite.
type Learned struct {
	// ClaudeCodeVersion is the lowest Claude Code version the service last
	// asked for (a claude_code_version_too_old answer); "" when none.
	ClaudeCodeVersion string
	// VersionLearnedAt is when ClaudeCodeVersion was learnt.
	VersionLearnedAt time.Time

	extra map[string]json.RawMessage
}

const (
	learnedVersionField = "claude_code_version"
	learnedAtField      = "claude_code_version_learned_at"
)

// ReadLearned reads path; a missing file is an empty Learned. A malformed
// file is a *MalformedError and is left as it is.
func ReadLearned(path string) (*Learned, error) {
	d, top, err := readObjectFile(path)
	switch {
	case err != nil:
		return nil, err
	case top == nil:
		return &Learned{}, nil // no file yet
	}
	l := &Learned{extra: top}
	if raw, ok := top[learnedVersionField]; ok {
		if err := d.decode("/"+learnedVersionField, raw, &l.ClaudeCodeVersion, "a string"); err != nil {
			return nil, err
		}
	}
	if raw, ok := top[learnedAtField]; ok {
		if err := d.decode("/"+learnedAtField, raw, &l.VersionLearnedAt, "an RFC 3339 time"); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Learned) marshal() ([]byte, error) {
	top := map[string]json.RawMessage{}
	for k, v := range l.extra {
		top[k] = v
	}
	delete(top, learnedVersionField)
	delete(top, learnedAtField)
	if l.ClaudeCodeVersion != "" {
		top[learnedVersionField], _ = json.Marshal(l.ClaudeCodeVersion)
		top[learnedAtField], _ = json.Marshal(l.VersionLearnedAt.UTC())
	}
	return marshalObject(top)
}

// RaiseClaudeCodeVersion records v as the Claude Code version to send, under
// the file's lock with a fresh read, unless the file already holds the same
// or a newer version: a learnt version is never lowered. It returns the
// version now recorded.
func RaiseClaudeCodeVersion(ctx context.Context, path, v string, now time.Time) (string, error) {
	if !semver.IsValid("v" + v) {
		return "", fmt.Errorf("record Claude Code version %q: not a version", v)
	}
	unlock, err := Lock(ctx, path, LockOptions{})
	if err != nil {
		return "", err
	}
	defer unlock() //nolint:errcheck // a lock left behind goes stale
	l, err := ReadLearned(path)
	if err != nil {
		return "", err
	}
	if l.ClaudeCodeVersion != "" && semver.Compare("v"+l.ClaudeCodeVersion, "v"+v) >= 0 {
		return l.ClaudeCodeVersion, nil
	}
	l.ClaudeCodeVersion, l.VersionLearnedAt = v, now
	data, err := l.marshal()
	if err != nil {
		return "", err
	}
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		return "", err
	}
	return v, nil
}
