// Package pkce implements the Claude Pro/Max OAuth login: PKCE (RFC 7636) verifier and
// challenge, the authorize URL, a loopback callback server, paste-input parsing, and the
// token endpoint client (code exchange and refresh, with bounded retries).
//
// Every endpoint is configurable through Config so tests and the emulator can stand in for
// Anthropic. Nothing in this package prints a token whole.
package pkce

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"

	"golang.org/x/oauth2"
)

// OAuth constants for Claude Pro/Max (see shared/reference/anthropic-oauth.md).
const (
	// ClientID is the public OAuth client id used by Claude Code.
	ClientID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
	// DefaultAuthorizeURL is the browser authorization endpoint.
	DefaultAuthorizeURL = "https://claude.ai/oauth/authorize"
	// DefaultTokenURL is the token endpoint for code exchange and refresh.
	DefaultTokenURL = "https://platform.claude.com/v1/oauth/token"
	// ManualRedirectURI is the redirect URI of the paste flow; that page shows code#state.
	ManualRedirectURI = "https://platform.claude.com/oauth/code/callback"
	// Scopes is the space-separated scope list requested at login.
	Scopes = "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
	// DefaultPort is the loopback port of the callback server.
	DefaultPort = 53692
	// CallbackPath is the only path the callback server serves.
	CallbackPath = "/callback"
)

// NewVerifier returns a fresh PKCE code verifier: 32 random bytes, base64url without
// padding (43 characters).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// Challenge returns the S256 code challenge of verifier (base64url of its SHA-256, no padding).
func Challenge(verifier string) string { return oauth2.S256ChallengeFromVerifier(verifier) }

// NewState returns a fresh random OAuth state, independent of any verifier.
func NewState() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// stateEqual compares two states in constant time.
func stateEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
