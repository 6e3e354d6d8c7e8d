package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/retryafter"
	"github.com/piauth/piauth/internal/secret"
)

// Path is the usage endpoint's path on the API's base URL.
const Path = "/api/oauth/usage"

// OAuthBeta is the beta header the usage endpoint requires.
const OAuthBeta = "oauth-2025-04-20"

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// Error is a refusal of the usage endpoint. It says nothing about whether
// the key serves Messages requests.
type Error struct {
	Status  int
	Type    string // the API's error type, "" when the body is not one
	Message string // masked
	// RetryAfter is the wait the answer asked for (retry-after); 0 when none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("usage endpoint: HTTP %d", e.Status)
	if e.Type != "" {
		msg += " " + e.Type
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Refused reports whether the endpoint refused the credential itself
// (401: expired, revoked or not an OAuth token).
func (e *Error) Refused() bool { return e.Status == http.StatusUnauthorized }

// IsRefused reports whether err is an *Error for a refused credential.
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Refused()
}

// Client asks the usage endpoint. The zero value is not usable: HTTP and
// BaseURL are required.
type Client struct {
	HTTP    *http.Client // never a rotating transport
	BaseURL string       // https://api.anthropic.com (no trailing slash)
	// Version is the Claude Code version sent as User-Agent
	// "claude-code/<Version>" (without it the endpoint answers 429).
	Version string
	Now     func() time.Time // time.Now when nil
}

// Fetch asks for the windows of the account of token (an OAuth access
// token). A refusal is an *Error; ctx bounds the call.
func (c *Client) Fetch(ctx context.Context, token string) (*Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+Path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("anthropic-beta", OAuthBeta)
	req.Header.Set("User-Agent", "claude-code/"+c.Version)
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, errors.New(secret.MaskAll(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("usage endpoint: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.apiError(resp, body)
	}
	return Parse(body)
}

func (c *Client) apiError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	var doc struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Type, e.Message = doc.Error.Type, secret.MaskAll(doc.Error.Message)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if d, ok := retryafter.Parse(resp.Header, now(), 24*time.Hour); ok {
		e.RetryAfter = d
	}
	return e
}
