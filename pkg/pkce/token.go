package pkce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/retryafter"
	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/when"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalidGrant means the code or refresh token was rejected (expired, reused, revoked,
	// or redirect_uri mismatch): the user must log in again.
	ErrInvalidGrant = errors.New("invalid_grant")
	// ErrStateMismatch means a returned state differs from the one sent.
	ErrStateMismatch = errors.New("oauth state mismatch")
	// ErrTimeout means the login was not completed in time.
	ErrTimeout = errors.New("login timed out")
	// ErrAccessDenied means the authorization server answered the login with an error
	// (carried by *AuthorizeError).
	ErrAccessDenied = errors.New("authorization denied")
	// ErrIncompleteToken means the token endpoint answered 2xx with no usable access
	// token; a returned *Token may still carry a new refresh token to keep.
	ErrIncompleteToken = errors.New("incomplete token response")
	// ErrRedirect means the token endpoint answered with a redirect, which is never
	// followed: the request body holds a code or refresh token.
	ErrRedirect = errors.New("token endpoint redirected; not following")
	// ErrNoAnswer means the token endpoint did not connect or answer in time
	// (Config.ConnectTimeout, Config.ResponseTimeout).
	ErrNoAnswer = errors.New("no answer from the token endpoint")
)

const (
	maxRetries      = 2
	maxRetryAfter   = 30 * time.Second
	expiryMargin    = 5 * time.Minute
	maxResponseBody = 1 << 20
)

// Config holds the OAuth client settings. The zero value uses the production endpoints,
// the default HTTP transport, a 10 s connect and 30 s first-byte limit, time.Now and a
// context-aware sleep.
type Config struct {
	ClientID          string // "" means ClientID
	AuthorizeEndpoint string // "" means DefaultAuthorizeURL
	TokenEndpoint     string // "" means DefaultTokenURL
	// HTTP carries token endpoint requests (nil → a fresh client). Whatever it says,
	// redirects are never followed (the body holds a code or refresh token) and the
	// ConnectTimeout / ResponseTimeout limits apply.
	HTTP *http.Client
	// ConnectTimeout bounds connecting (TCP and TLS) to the token endpoint; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for the first byte of the answer once the request
	// is sent, and again the read of its body; 0 means DefaultResponseTimeout.
	ResponseTimeout time.Duration
	// LimitsSetBy names what chose ConnectTimeout and ResponseTimeout (e.g.
	// "PIAUTH_TIMEOUT") in the no-answer message; "" means the defaults.
	LimitsSetBy string
	Now         func() time.Time
	// Sleep waits between token endpoint retries; it must return ctx.Err() when ctx ends first.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *Config) clientID() string {
	if c == nil || c.ClientID == "" {
		return ClientID
	}
	return c.ClientID
}

func (c *Config) authorizeEndpoint() string {
	if c == nil || c.AuthorizeEndpoint == "" {
		return DefaultAuthorizeURL
	}
	return c.AuthorizeEndpoint
}

func (c *Config) tokenEndpoint() string {
	if c == nil || c.TokenEndpoint == "" {
		return DefaultTokenURL
	}
	return c.TokenEndpoint
}

func (c *Config) now() time.Time {
	if c == nil || c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Config) sleep(ctx context.Context, d time.Duration) error {
	if c != nil && c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	return when.Sleep(ctx, d)
}

// AuthorizeURL returns the browser URL that starts the login. redirectURI must be passed
// unchanged to Exchange.
func (c *Config) AuthorizeURL(redirectURI, challenge, state string) string {
	q := url.Values{}
	q.Set("code", "true")
	q.Set("client_id", c.clientID())
	q.Set("response_type", "code")
	q.Set("redirect_uri", redirectURI)
	q.Set("scope", Scopes)
	q.Set("code_challenge", challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("state", state)
	base := c.authorizeEndpoint()
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + q.Encode()
}

// Account identifies who logged in, when the token response says.
type Account struct {
	UUID  string
	Email string
}

// Token is a token endpoint response. ExpiresIn is always within
// [MinExpiresIn, MaxExpiresIn] when the Token comes from this package (a missing,
// unreadable or non-positive expires_in reads as DefaultExpiresIn).
type Token struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	Account      *Account
}

// Bounds on a token lifetime, in seconds: a server's expires_in is clamped into
// [MinExpiresIn, MaxExpiresIn], and one that is missing, unreadable or ≤ 0 counts as
// DefaultExpiresIn, so a stored expiry is always a little in the future.
const (
	MinExpiresIn     = 60
	MaxExpiresIn     = 7 * 24 * 3600
	DefaultExpiresIn = 3600
)

// clampExpiresIn maps any lifetime into [MinExpiresIn, MaxExpiresIn]; ≤ 0 means
// "unknown" and becomes DefaultExpiresIn.
func clampExpiresIn(s int) int {
	switch {
	case s <= 0:
		return DefaultExpiresIn
	case s < MinExpiresIn:
		return MinExpiresIn
	case s > MaxExpiresIn:
		return MaxExpiresIn
	}
	return s
}

// ExpiresAtMs returns the expiry to store, pi's convention: now + expires_in − 5 min, in
// epoch milliseconds. ExpiresIn is clamped first (see MinExpiresIn), and the margin is at
// most half the lifetime, so the result is always after now and never overflows.
func (t *Token) ExpiresAtMs(now time.Time) int64 {
	life := time.Duration(clampExpiresIn(t.ExpiresIn)) * time.Second
	return now.Add(life - min(expiryMargin, life/2)).UnixMilli()
}

// String describes the token with masked secrets only.
func (t *Token) String() string {
	return fmt.Sprintf("access=%s refresh=%s expires_in=%ds", secret.Mask(t.AccessToken), secret.Mask(t.RefreshToken), t.ExpiresIn)
}

// TokenError is a non-2xx answer of the token endpoint. errors.Is(err, ErrInvalidGrant)
// reports whether Code is "invalid_grant".
type TokenError struct {
	Status      int
	Code        string // OAuth "error" (or Anthropic error.type)
	Description string // OAuth "error_description" (or Anthropic error.message), secrets masked
}

func (e *TokenError) Error() string {
	msg := fmt.Sprintf("token endpoint: HTTP %d", e.Status)
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Is makes errors.Is(err, ErrInvalidGrant) true for invalid_grant answers.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}

// Exchange trades an authorization code for tokens. redirectURI must be exactly the one
// used in the authorize URL. When the answer carries a refresh token but no usable
// access token, Exchange refreshes once with it (see Refresh); if that fails too, it
// returns the partial Token with the error, so the caller can keep the refresh token.
func (c *Config) Exchange(ctx context.Context, code, state, verifier, redirectURI string) (*Token, error) {
	body := struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		Code         string `json:"code"`
		State        string `json:"state"`
		RedirectURI  string `json:"redirect_uri"`
		CodeVerifier string `json:"code_verifier"`
	}{"authorization_code", c.clientID(), code, state, redirectURI, verifier}
	tok, err := c.post(ctx, body)
	if errors.Is(err, ErrIncompleteToken) && tok != nil && tok.RefreshToken != "" {
		return c.completeWithRefresh(ctx, tok, err)
	}
	if err != nil {
		return tok, fmt.Errorf("exchange code: %w", err)
	}
	return tok, nil
}

// Refresh trades a refresh token for new tokens. Refresh tokens rotate: the caller must
// persist the returned RefreshToken at once. If the server omits a new refresh token, the
// one sent is returned in its place.
//
// An answer the server sent successfully but that lacks a usable access token is still
// used: when it holds a new refresh token (the old one is already revoked), Refresh tries
// once more with it; if that fails as well, the error wraps ErrIncompleteToken and the
// returned Token (when not nil) carries the newest refresh token, which the caller must
// store.
func (c *Config) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	tok, err := c.refreshOnce(ctx, refreshToken)
	if errors.Is(err, ErrIncompleteToken) && tok != nil && tok.RefreshToken != refreshToken {
		return c.completeWithRefresh(ctx, tok, err)
	}
	return tok, err
}

func (c *Config) refreshOnce(ctx context.Context, refreshToken string) (*Token, error) {
	body := struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		RefreshToken string `json:"refresh_token"`
	}{"refresh_token", c.clientID(), refreshToken}
	tok, err := c.post(ctx, body)
	if tok != nil && tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	if err != nil {
		return tok, fmt.Errorf("refresh token %s: %w", secret.Mask(refreshToken), err)
	}
	return tok, nil
}

// completeWithRefresh turns a partial answer (new refresh token, no access token) into
// a full one with one refresh. On failure it returns the newest refresh token it holds.
func (c *Config) completeWithRefresh(ctx context.Context, partial *Token, first error) (*Token, error) {
	tok, err := c.refreshOnce(ctx, partial.RefreshToken)
	if err == nil {
		return tok, nil
	}
	if tok == nil || tok.RefreshToken == "" {
		tok = partial
	}
	return tok, fmt.Errorf("%w (then: %w)", first, err)
}

// post sends body as JSON to the token endpoint, retrying 429/5xx at most maxRetries
// times. A non-nil Token with an error is a partial answer (ErrIncompleteToken).
func (c *Config) post(ctx context.Context, body any) (*Token, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		tok, retryAfter, err := c.postOnce(ctx, payload, attempt)
		if err == nil || tok != nil {
			return tok, err
		}
		if retryAfter < 0 || attempt >= maxRetries {
			return nil, err
		}
		if serr := c.sleep(ctx, retryAfter); serr != nil {
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, serr)
		}
	}
}

func retryable(resp *http.Response) bool {
	if strings.EqualFold(resp.Header.Get("x-should-retry"), "false") {
		return false
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// retryDelay honours retry-after-ms and retry-after (seconds or HTTP date), capped at
// maxRetryAfter; without them it backs off 1 s, then 2 s.
func (c *Config) retryDelay(h http.Header, attempt int) time.Duration {
	if d, ok := retryafter.Parse(h, c.now(), maxRetryAfter); ok {
		return d
	}
	return time.Second << attempt
}
