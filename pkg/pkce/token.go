package pkce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/secret"
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
)

const (
	maxRetries      = 2
	maxRetryAfter   = 30 * time.Second
	expiryMargin    = 5 * time.Minute
	maxResponseBody = 1 << 20
	defaultTimeout  = 30 * time.Second
)

// Config holds the OAuth client settings. The zero value uses the production endpoints,
// a 30 s HTTP client, time.Now and a context-aware sleep.
type Config struct {
	ClientID          string // "" means ClientID
	AuthorizeEndpoint string // "" means DefaultAuthorizeURL
	TokenEndpoint     string // "" means DefaultTokenURL
	HTTP              *http.Client
	Now               func() time.Time
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

func (c *Config) httpClient() *http.Client {
	if c == nil || c.HTTP == nil {
		return &http.Client{Timeout: defaultTimeout}
	}
	return c.HTTP
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
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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

// Token is a successful token endpoint response.
type Token struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	Account      *Account
}

// ExpiresAtMs returns the expiry to store, pi's convention: now + expires_in − 5 min, in
// epoch milliseconds.
func (t *Token) ExpiresAtMs(now time.Time) int64 {
	return now.Add(time.Duration(t.ExpiresIn)*time.Second - expiryMargin).UnixMilli()
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
// used in the authorize URL.
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
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	return tok, nil
}

// Refresh trades a refresh token for new tokens. Refresh tokens rotate: the caller must
// persist the returned RefreshToken at once. If the server omits a new refresh token, the
// one sent is returned in its place.
func (c *Config) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	body := struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		RefreshToken string `json:"refresh_token"`
	}{"refresh_token", c.clientID(), refreshToken}
	tok, err := c.post(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("refresh token %s: %w", secret.Mask(refreshToken), err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}

// post sends body as JSON to the token endpoint, retrying 429/5xx at most maxRetries times.
func (c *Config) post(ctx context.Context, body any) (*Token, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		tok, retryAfter, err := c.postOnce(ctx, payload, attempt)
		if err == nil {
			return tok, nil
		}
		if retryAfter < 0 || attempt >= maxRetries {
			return nil, err
		}
		if serr := c.sleep(ctx, retryAfter); serr != nil {
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, serr)
		}
	}
}

// postOnce does one request. A non-negative retryAfter means the error is retryable.
func (c *Config) postOnce(ctx context.Context, payload []byte, attempt int) (*Token, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenEndpoint(), bytes.NewReader(payload))
	if err != nil {
		return nil, -1, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// Not retried: the server may have consumed a single-use code or rotated the refresh token.
		return nil, -1, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, -1, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		terr := parseTokenError(resp.StatusCode, data)
		if !retryable(resp) {
			return nil, -1, terr
		}
		return nil, c.retryDelay(resp.Header, attempt), terr
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		Account      *struct {
			UUID         string `json:"uuid"`
			EmailAddress string `json:"email_address"`
		} `json:"account"`
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		return nil, -1, fmt.Errorf("decode token response (HTTP %d): %w", resp.StatusCode, err)
	}
	if tr.AccessToken == "" {
		return nil, -1, fmt.Errorf("token response (HTTP %d) has no access_token", resp.StatusCode)
	}
	tok := &Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, ExpiresIn: tr.ExpiresIn}
	if tr.Account != nil {
		tok.Account = &Account{UUID: tr.Account.UUID, Email: tr.Account.EmailAddress}
	}
	return tok, 0, nil
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
	d, ok := time.Duration(0), false
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			d, ok = time.Duration(ms*float64(time.Millisecond)), true
		}
	}
	if v := strings.TrimSpace(h.Get("retry-after")); !ok && v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
			d, ok = time.Duration(s*float64(time.Second)), true
		} else if t, err := http.ParseTime(v); err == nil {
			d, ok = max(t.Sub(c.now()), 0), true
		}
	}
	if !ok {
		return time.Second << attempt
	}
	return min(d, maxRetryAfter)
}

// parseTokenError reads an OAuth ({"error","error_description"}) or Anthropic
// ({"error":{"type","message"}}) error body.
func parseTokenError(status int, data []byte) *TokenError {
	e := &TokenError{Status: status}
	var body struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(data, &body) == nil && len(body.Error) > 0 {
		var code string
		var obj struct{ Type, Message string }
		switch {
		case json.Unmarshal(body.Error, &code) == nil:
			e.Code, e.Description = code, body.ErrorDescription
		case json.Unmarshal(body.Error, &obj) == nil:
			e.Code, e.Description = obj.Type, obj.Message
		}
	}
	if e.Code == "" && e.Description == "" {
		e.Description = http.StatusText(status)
	}
	e.Code = secret.MaskAll(e.Code)
	e.Description = secret.MaskAll(e.Description)
	return e
}
