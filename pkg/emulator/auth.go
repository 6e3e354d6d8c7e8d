package emulator

import (
	"net/http"
	"strings"
)

// Error messages the real API uses for credentials.
const (
	msgInvalidAPIKey   = "invalid x-api-key"
	msgOAuthNotAllowed = "OAuth authentication is currently not supported."
	msgExpired         = "OAuth token has expired. Please obtain a new token or refresh your existing token."
	msgRevoked         = "OAuth token has been revoked. Please obtain a new token."
)

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func hasBeta(r *http.Request, beta string) bool {
	for _, v := range r.Header.Values("anthropic-beta") {
		for _, b := range strings.Split(v, ",") {
			if strings.TrimSpace(b) == beta {
				return true
			}
		}
	}
	return false
}

func isOAuth(tok string) bool { return strings.HasPrefix(tok, "sk-ant-oat") }

func (e *Emulator) countToken(tok string) {
	e.mu.Lock()
	e.stats.Tokens[Fingerprint(tok)]++
	e.mu.Unlock()
}

// checkMinted refuses tok when it was minted here and is expired or
// revoked, or when it was not minted here and carries an at_auth marker
// (invalid, disabled); nil when usable.
func (e *Emulator) checkMinted(tok string) *failure {
	e.mu.Lock()
	at, ok := e.access[tok]
	var expired, revoked bool
	if ok {
		expired, revoked = !e.opts.Now().Before(at.expires), at.revoked
	}
	e.mu.Unlock()
	switch {
	case revoked:
		return &failure{status: http.StatusUnauthorized, typ: "authentication_error", msg: msgRevoked}
	case expired:
		return &failure{status: http.StatusUnauthorized, typ: "authentication_error", msg: msgExpired}
	case ok:
		return nil
	}
	if out, hit := e.rules.marker(tok, true); hit && out.Status != http.StatusOK {
		return e.outcomeFailure(out)
	}
	return nil
}

// authenticate checks credentials and headers. It returns the presented
// token (possibly "") and, when the request must be refused, the failure.
func (e *Emulator) authenticate(r *http.Request) (string, *failure) {
	unauthorized := func(msg string) *failure {
		return &failure{status: http.StatusUnauthorized, typ: "authentication_error", msg: msg}
	}
	apiKey := r.Header.Get("x-api-key")
	bear, hasBearer := bearer(r)
	var tok string
	switch {
	case apiKey != "" && (isOAuth(apiKey) || hasBearer):
		return apiKey, unauthorized(msgInvalidAPIKey)
	case apiKey != "":
		tok = apiKey
		if !strings.HasPrefix(apiKey, "sk-ant-api") {
			return tok, unauthorized(msgInvalidAPIKey)
		}
	case hasBearer:
		tok = bear
		if !isOAuth(bear) {
			return tok, unauthorized("Invalid bearer token")
		}
	default:
		return "", unauthorized("x-api-key header is required")
	}
	if r.Header.Get("anthropic-version") == "" {
		return tok, &failure{status: http.StatusBadRequest, typ: "invalid_request_error", msg: "anthropic-version: header is required"}
	}
	if isOAuth(tok) && !hasBeta(r, OAuthBeta) {
		return tok, unauthorized(msgOAuthNotAllowed)
	}
	return tok, e.checkMinted(tok)
}
