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

import "github.com/piauth/piauth/internal/secret"

// IsOAuth reports whether token is an OAuth access token: anything but a
// Console API key (sk-ant-api…), by the one rule of secret.KindOf.
func IsOAuth(token string) bool { return secret.KindOf(token) == secret.KindOAuth }
