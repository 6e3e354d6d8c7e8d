// Package stream is piauth's Anthropic Messages client core: request shaping
// for OAuth tokens and API keys, a linear SSE decoder, an accumulator that
// builds the final message from stream events, typed API errors, and usage
// accounting with a price table.
//
// It imports no other piauth package so that rotation and the proxy can build
// on it.
package stream

import "strings"

// KeyKind says how a credential authenticates against the Messages API.
type KeyKind int

const (
	// KindOAuth is a Claude Pro/Max OAuth access token (sk-ant-oat…).
	KindOAuth KeyKind = iota
	// KindAPIKey is a Console API key (sk-ant-api…).
	KindAPIKey
)

// String returns "oauth" or "api-key".
func (k KeyKind) String() string {
	if k == KindAPIKey {
		return "api-key"
	}
	return "oauth"
}

// KindOf classifies a token by prefix: sk-ant-api… is an API key, anything
// else is treated as an OAuth access token.
func KindOf(token string) KeyKind {
	if strings.HasPrefix(token, "sk-ant-api") {
		return KindAPIKey
	}
	return KindOAuth
}

// IsOAuth reports whether token is an OAuth access token (see KindOf).
func IsOAuth(token string) bool { return KindOf(token) == KindOAuth }

// maskToken renders a secret for humans: its prefix up to the third '-', the
// next 2 characters, "…", and the last 4. Short secrets show only the prefix.
func maskToken(tok string) string {
	prefix, rest := "", tok
	if strings.HasPrefix(tok, "sk-ant-") {
		cut := len("sk-ant-")
		if i := strings.IndexByte(tok[cut:], '-'); i >= 0 {
			cut += i + 1
		}
		prefix, rest = tok[:cut], tok[cut:]
	}
	if len(rest) < 10 {
		return prefix + "…"
	}
	return prefix + rest[:2] + "…" + rest[len(rest)-4:]
}

// maskSecrets replaces every sk-ant-… token inside s by its masked form.
func maskSecrets(s string) string {
	const marker = "sk-ant-"
	if !strings.Contains(s, marker) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, marker)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		b.WriteString(maskToken(s[i:j]))
		s = s[j:]
	}
}

func isTokenByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
