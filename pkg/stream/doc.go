// Package stream is piauth's Anthropic Messages client core: request shaping
// for OAuth tokens and API keys, a linear SSE decoder, an accumulator that
// builds the final message from stream events, typed API errors, and usage
// accounting with a price table.
//
// Everything the service may change (the Claude Code version it requires,
// the OAuth betas and identity, Claude Code's tool names, models, aliases,
// prices and retirements) is data: the embedded anthropic.json, read by
// Builtin, which an override file can amend (ParseService, Service.Merge)
// and a learnt version can raise (RequiredVersion, Service.WithVersion). The
// package-level Shape, Prepare, SetAuthHeaders, ToolNamesFor, SentToolName,
// Cost and FormatUsage use Builtin().
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
