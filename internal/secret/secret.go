// Package secret renders Anthropic credentials for humans without revealing
// them: one masking rule and one fingerprint for every package of piauth.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

const marker = "sk-ant-"

// Mask hides a secret: the "sk-ant-xxx-" prefix, the first 2 characters of the
// rest, "…" and the last 4 ("sk-ant-oat01-AbCd…wxyz" → "sk-ant-oat01-Ab…wxyz").
// Tokens shorter than 16 characters become "****"; a prefix followed by fewer
// than 8 characters keeps only the prefix.
func Mask(tok string) string {
	if len(tok) < 16 {
		return "****"
	}
	prefix := ""
	if rest, ok := strings.CutPrefix(tok, marker); ok {
		if i := strings.IndexByte(rest, '-'); i >= 0 {
			prefix = tok[:len(marker)+i+1]
		}
	}
	rest := tok[len(prefix):]
	if len(rest) < 8 {
		return prefix + "****"
	}
	return prefix + rest[:2] + "…" + rest[len(rest)-4:]
}

// MaskAll replaces every "sk-ant-…" token inside s by its masked form, so an
// error body or log line that echoes a credential never shows it whole.
func MaskAll(s string) string {
	if !strings.Contains(s, marker) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.Index(s, marker)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(marker)
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		b.WriteString(s[:i])
		if masked(s[i:j], s[j:]) {
			b.WriteString(s[i:j]) // already masked: masking twice would hide even the prefix
		} else {
			b.WriteString(Mask(s[i:j]))
		}
		s = s[j:]
	}
}

// masked reports whether run (an sk-ant- token run) followed by after is
// Mask's output rather than a token: "sk-ant-oat01-Ab…wxyz" (at most two
// characters after the prefix, then "…") or "sk-ant-oat01-****".
func masked(run, after string) bool {
	rest := strings.TrimPrefix(run, marker)
	k := strings.IndexByte(rest, '-')
	if k < 0 {
		return false
	}
	tail := rest[k+1:]
	return len(tail) <= 2 && strings.HasPrefix(after, "…") || tail == "" && strings.HasPrefix(after, "****")
}

func isTokenByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Fingerprint is a stable, non-secret name for a token: the first 12 hex
// characters of its SHA-256.
func Fingerprint(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])[:12]
}

// Kind tells OAuth access tokens from console API keys.
type Kind string

// Kinds of credentials.
const (
	KindOAuth Kind = "oauth"
	KindAPI   Kind = "api"
)

// KindOf classifies a token: "sk-ant-api…" is a console API key (sent as
// x-api-key, never refreshed), anything else an OAuth access token. This is
// the one rule every package uses.
func KindOf(tok string) Kind {
	if strings.HasPrefix(tok, "sk-ant-api") {
		return KindAPI
	}
	return KindOAuth
}

// Errors of CheckKey.
var (
	// ErrRefreshToken is a refresh token (sk-ant-ort…) given where a key
	// belongs: it authenticates nothing by itself and must never be sent to
	// the Messages API.
	ErrRefreshToken = errors.New("is a refresh token, not a key; pool the account with its refresh token by 'piauth login --add-to-pool'")
	// ErrNotAKey is text that is not an Anthropic key.
	ErrNotAKey = errors.New("is not an Anthropic key (an OAuth access token or a Console API key, letters, digits, - and _ only)")
)

// CheckKey reports whether tok can be pooled as a key: an sk-ant- token of
// the characters tokens are made of (letters, digits, - and _), not a
// refresh token. Its errors never contain tok.
func CheckKey(tok string) error {
	rest, ok := strings.CutPrefix(tok, marker)
	switch {
	case !ok || len(rest) < 8:
		return ErrNotAKey
	case strings.HasPrefix(rest, "ort"):
		return ErrRefreshToken
	}
	for i := 0; i < len(tok); i++ {
		if !isTokenByte(tok[i]) {
			return ErrNotAKey
		}
	}
	return nil
}
