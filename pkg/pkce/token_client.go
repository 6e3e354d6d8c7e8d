package pkce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/piauth/piauth/internal/when"
)

// Default limits of a token endpoint request (Config.ConnectTimeout,
// Config.ResponseTimeout).
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultResponseTimeout = 30 * time.Second
)

func (c *Config) connectTimeout() time.Duration {
	if c == nil || c.ConnectTimeout <= 0 {
		return DefaultConnectTimeout
	}
	return c.ConnectTimeout
}

func (c *Config) responseTimeout() time.Duration {
	if c == nil || c.ResponseTimeout <= 0 {
		return DefaultResponseTimeout
	}
	return c.ResponseTimeout
}

// httpClient returns the client for one token endpoint request: Config.HTTP (or a
// fresh client) that never follows a redirect, and whose transport, when it is a
// plain *http.Transport (the default one included), has the connect and
// first-byte limits set. Limits for other transports come from the request's
// timer (see postOnce).
func (c *Config) httpClient() *http.Client {
	var hc http.Client
	if c != nil && c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if t, ok := base.(*http.Transport); ok {
		t = t.Clone()
		d := &net.Dialer{Timeout: c.connectTimeout(), KeepAlive: 30 * time.Second}
		t.DialContext = d.DialContext
		t.TLSHandshakeTimeout = c.connectTimeout()
		t.ResponseHeaderTimeout = c.responseTimeout()
		t.DisableKeepAlives = true // one request per login or refresh: nothing to reuse
		hc.Transport = t
	}
	return &hc
}

// phase names where a request stands, for the no-answer message.
type phase struct{ connected, sent atomic.Bool }

func (p *phase) String() string {
	switch {
	case p.sent.Load():
		return "waiting for the answer"
	case p.connected.Load():
		return "sending the request"
	}
	return "connecting"
}

// postOnce does one request. A non-negative retryAfter means the error is retryable. A
// non-nil Token with an error is a partial answer worth keeping.
func (c *Config) postOnce(ctx context.Context, payload []byte, attempt int) (*Token, time.Duration, error) {
	endpoint := c.tokenEndpoint()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var ph phase
	limit := c.connectTimeout() + c.responseTimeout()
	timedOut := func() error {
		return fmt.Errorf("token endpoint %s: %w within %s (%s)", endpoint, ErrNoAnswer, limit, &ph)
	}
	// Backstop for any transport: connect + first byte within both limits together.
	timer := time.AfterFunc(limit, func() { cancel(timedOut()) })
	defer timer.Stop()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { ph.connected.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { ph.sent.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, -1, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// Not retried: the server may have consumed a single-use code or rotated the refresh token.
		return nil, -1, noAnswerErr(ctx, err, endpoint, c, &ph)
	}
	defer resp.Body.Close()
	timer.Reset(c.responseTimeout()) // the body, too, must arrive in time
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, -1, fmt.Errorf("read response of %s: %w", endpoint, noAnswerErr(ctx, err, endpoint, c, &ph))
	}
	if resp.StatusCode/100 == 3 {
		return nil, -1, fmt.Errorf("%w: %s answered HTTP %d to %q (a code or refresh token is never re-sent to another URL; check PIAUTH_TOKEN_URL / --token-url)",
			ErrRedirect, endpoint, resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.StatusCode/100 != 2 {
		terr := parseTokenError(resp.StatusCode, data)
		if !retryable(resp) {
			return nil, -1, terr
		}
		return nil, c.retryDelay(resp.Header, attempt), terr
	}
	tok, err := parseTokenResponse(resp.StatusCode, data)
	if err != nil {
		return tok, -1, err
	}
	return tok, 0, nil
}

// noAnswerErr names the endpoint and the limit when err comes from a timeout.
func noAnswerErr(ctx context.Context, err error, endpoint string, c *Config, ph *phase) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrNoAnswer) {
		return cause
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
		limit := c.responseTimeout()
		if !ph.connected.Load() {
			limit = c.connectTimeout()
		}
		setBy := "the default"
		if c != nil && c.LimitsSetBy != "" {
			setBy = c.LimitsSetBy
		}
		return fmt.Errorf("token endpoint %s: %w within %s (%s; limit set by %s): %w", endpoint, ErrNoAnswer, when.Duration(limit), ph, setBy, err)
	}
	return err
}
