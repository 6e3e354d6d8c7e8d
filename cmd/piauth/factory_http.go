package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/stream"
)

// Timeouts of outgoing requests (README "Files and environment").
const (
	defaultTimeout = 5 * time.Minute // first byte of a Messages answer, and silence inside a stream
	connectTimeout = 10 * time.Second
)

// timeout is the limit chosen by --timeout, else PIAUTH_TIMEOUT, with what
// set it; ok is false when neither is set.
func (f *Factory) timeout() (d time.Duration, setBy string, ok bool, err error) {
	v, setBy := f.TimeoutFlag, "--timeout"
	if v == "" {
		v, setBy = f.Getenv("PIAUTH_TIMEOUT"), "PIAUTH_TIMEOUT"
	}
	if v == "" {
		return 0, "", false, nil
	}
	d, err = parseTimeout(v)
	if err != nil {
		return 0, "", false, usagef("%s %q: %v", setBy, v, err)
	}
	return d, setBy, true, nil
}

// parseTimeout reads a Go duration ("90s", "2m") or a number of seconds.
func parseTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 24*3600 {
			return 0, fmt.Errorf("want a duration between 0 and 24h")
		}
		return time.Duration(s * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("want a duration such as 90s or 5m (at most 24h)")
	}
	return d, nil
}

// httpClient is the client of Messages requests: f.HTTPClient when a test
// set one, else a bounded client (httpx.New: connect 10 s; first byte and
// stream silence the timeout, default 5 min). Redirects are never followed.
func (f *Factory) httpClient() (*http.Client, error) {
	if f.HTTPClient != nil {
		return noRedirect(f.HTTPClient), nil
	}
	d, setBy, ok, err := f.timeout()
	if err != nil {
		return nil, err
	}
	if !ok {
		d, setBy = defaultTimeout, "the default (--timeout or PIAUTH_TIMEOUT change it)"
	}
	return httpx.New(httpx.Limits{Connect: min(connectTimeout, d), FirstByte: d, Idle: d, SetBy: setBy}), nil
}

// oauthLimits applies --timeout / PIAUTH_TIMEOUT to the token endpoint
// client of cfg; without them pkce's own defaults hold (10 s to connect,
// 30 s to the first byte: a silent token endpoint must not hang `piauth
// token` in a CI job). pkce owns those limits; the Factory only chooses.
func (f *Factory) oauthLimits(cfg *pkce.Config) error {
	d, setBy, ok, err := f.timeout()
	if err != nil || !ok {
		return err
	}
	cfg.ConnectTimeout, cfg.ResponseTimeout, cfg.LimitsSetBy = min(connectTimeout, d), d, setBy
	return nil
}

// noRedirect returns a copy of c that never follows a redirect: piauth adds
// credentials inside its transports, so a followed redirect would send them
// to whatever address it names.
func noRedirect(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = httpx.NoRedirect
	return &cc
}

// upstream is what every direct request to the service needs: the service
// data (shaping, version), where to send (BaseURL) and the bounded,
// redirect-refusing client.
func (f *Factory) upstream() (svc *stream.Service, base string, hc *http.Client, err error) {
	if svc, err = f.Service(); err != nil {
		return nil, "", nil, err
	}
	if base, err = f.BaseURL(); err != nil {
		return nil, "", nil, err
	}
	if hc, err = f.httpClient(); err != nil {
		return nil, "", nil, err
	}
	return svc, base, hc, nil
}
