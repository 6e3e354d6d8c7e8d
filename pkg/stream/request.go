package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// SetAuthHeaders is Builtin().SetAuthHeaders.
func SetAuthHeaders(h http.Header, token string, stream bool) {
	Builtin().SetAuthHeaders(h, token, stream)
}

// SetAuthHeaders is SetAuthHeadersFor with an unknown model (the
// interleaved-thinking beta is included).
func (s *Service) SetAuthHeaders(h http.Header, token string, stream bool) {
	s.SetAuthHeadersFor(h, token, "", stream)
}

// SetAuthHeadersFor sets the credential and API headers for token and model
// on h. Client x-api-key and authorization headers are removed first. OAuth
// tokens get a Bearer authorization, OAuthBetas(model) merged with the
// client's betas (deduped, never a forbidden one such as
// fine-grained-tool-streaming), UserAgent() and x-app: cli; API keys get
// x-api-key. anthropic-version is set unless present; content-type is JSON;
// accept is text/event-stream when stream is true.
func (s *Service) SetAuthHeadersFor(h http.Header, token, model string, stream bool) {
	h.Del("x-api-key")
	h.Del("authorization")
	var betas []string
	seen := map[string]bool{}
	add := func(list ...string) {
		for _, l := range list {
			for _, b := range strings.Split(l, ",") {
				b = strings.TrimSpace(b)
				if b == "" || seen[b] || s.forbiddenBeta(b) {
					continue
				}
				seen[b] = true
				betas = append(betas, b)
			}
		}
	}
	if IsOAuth(token) {
		add(s.OAuthBetas(model)...)
		h.Set("Authorization", "Bearer "+token)
		h.Set("User-Agent", s.UserAgent())
		h.Set("X-App", "cli")
	} else {
		h.Set("X-Api-Key", token)
	}
	add(h.Values("anthropic-beta")...)
	h.Del("anthropic-beta")
	if len(betas) > 0 {
		h.Set("Anthropic-Beta", strings.Join(betas, ","))
	}
	if h.Get("anthropic-version") == "" {
		h.Set("Anthropic-Version", s.d.AnthropicVersion)
	}
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	}
}

// NewRequest builds POST baseURL/v1/messages with body, without credentials.
// GetBody is set so transports can replay and re-shape it.
func NewRequest(ctx context.Context, baseURL string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new messages request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// Prepare is Builtin().Prepare.
func Prepare(req *http.Request, token string) error { return Builtin().Prepare(req, token) }

// Prepare shapes req's body (Shape) and sets its headers for token and the
// body's model (SetAuthHeadersFor). It modifies req: a RoundTripper must
// call it on req.Clone(ctx), never on the request it was given. The original
// body is read through GetBody when set (so each attempt starts from the
// caller's body), else from Body.
func (s *Service) Prepare(req *http.Request, token string) error {
	var rc io.ReadCloser
	var err error
	switch {
	case req.GetBody != nil:
		if rc, err = req.GetBody(); err != nil {
			return fmt.Errorf("prepare request: %w", err)
		}
	case req.Body != nil:
		rc = req.Body
	default:
		rc = io.NopCloser(bytes.NewReader(nil))
	}
	body, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("prepare request: read body: %w", err)
	}
	shaped := body
	if len(body) > 0 {
		if shaped, err = s.Shape(body, token); err != nil {
			return fmt.Errorf("prepare request: %w", err)
		}
	}
	var flags struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &flags)
	req.Body = io.NopCloser(bytes.NewReader(shaped))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(shaped)), nil }
	req.ContentLength = int64(len(shaped))
	s.SetAuthHeadersFor(req.Header, token, flags.Model, flags.Stream)
	return nil
}

// TokenTransport is an http.RoundTripper that prepares every request with
// the single credential returned by Token.
type TokenTransport struct {
	Base    http.RoundTripper // nil means http.DefaultTransport
	Token   func(ctx context.Context) (string, error)
	Service *Service // nil means Builtin()
}

// RoundTrip clones req, prepares the clone for the current token and sends it.
func (t *TokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("credential: %w", err)
	}
	svc := t.Service
	if svc == nil {
		svc = Builtin()
	}
	clone := req.Clone(req.Context())
	if err := svc.Prepare(clone, tok); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(clone)
}
