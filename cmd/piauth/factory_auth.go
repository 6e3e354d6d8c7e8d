package main

import (
	"net"
	"net/url"
	"strings"

	"github.com/piauth/piauth/pkg/pkce"
)

// defaultBaseURL is the Messages API origin when PIAUTH_BASE_URL is unset.
const defaultBaseURL = "https://api.anthropic.com"

// OAuthConfig is the OAuth client configuration: endpoints from
// PIAUTH_AUTHORIZE_URL and PIAUTH_TOKEN_URL (production when unset; `login`
// lets --authorize-url/--token-url override them), the Factory's HTTP client
// and clock.
func (f *Factory) OAuthConfig() (*pkce.Config, error) {
	cfg := &pkce.Config{
		AuthorizeEndpoint: f.Getenv("PIAUTH_AUTHORIZE_URL"),
		TokenEndpoint:     f.Getenv("PIAUTH_TOKEN_URL"),
		HTTP:              f.HTTPClient, // nil: pkce's own bounded, redirect-refusing client
		Now:               f.Now,
	}
	if err := f.oauthLimits(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// BaseURL is where piauth sends requests with your credentials:
// PIAUTH_BASE_URL (without a trailing slash), else https://api.anthropic.com.
//
// ANTHROPIC_BASE_URL is deliberately not read. It is the variable users set
// for OTHER clients (SDKs, Claude Code) to reach `piauth proxy`, often in a
// shell profile; a loopback port is anyone's to take while the proxy is
// down, and piauth would hand that squatter a real token. The rule: plain
// http only to a loopback address (the emulator, a local proxy); https to
// any other host, with a warning unless it is an anthropic.com host.
func (f *Factory) BaseURL() (string, error) {
	raw := strings.TrimRight(f.Getenv("PIAUTH_BASE_URL"), "/")
	if raw == "" {
		return defaultBaseURL, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", usagef("PIAUTH_BASE_URL %q is not an http(s) URL", raw)
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "http" && !loopbackHost(host):
		return "", usagef("PIAUTH_BASE_URL %q: plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https", raw)
	case u.Scheme == "https" && !loopbackHost(host) && host != "anthropic.com" && !strings.HasSuffix(host, ".anthropic.com"):
		f.warnOnce("base-url", "PIAUTH_BASE_URL sends your Claude credentials to %s, which is not Anthropic", host)
	}
	return raw, nil
}

// loopbackHost reports whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Refresher hands out valid tokens from auth.json and the pool, refreshing
// them (single-flight across processes) with OAuthConfig's token endpoint.
// Warnings go to stderr.
func (f *Factory) Refresher() (*pkce.Refresher, error) {
	store, err := f.Store()
	if err != nil {
		return nil, err
	}
	oc, err := f.OAuthConfig()
	if err != nil {
		return nil, err
	}
	return &pkce.Refresher{Store: store, OAuth: oc, Now: f.Now, Warn: f.IO.ErrOut}, nil
}
