package main

import (
	"strings"

	"github.com/piauth/piauth/pkg/pkce"
)

// defaultBaseURL is the Messages API origin when ANTHROPIC_BASE_URL is unset.
const defaultBaseURL = "https://api.anthropic.com"

// OAuthConfig is the OAuth client configuration: endpoints from
// PIAUTH_AUTHORIZE_URL and PIAUTH_TOKEN_URL (production when unset; `login`
// lets --authorize-url/--token-url override them), the Factory's HTTP client
// and clock.
func (f *Factory) OAuthConfig() *pkce.Config {
	return &pkce.Config{
		AuthorizeEndpoint: f.Getenv("PIAUTH_AUTHORIZE_URL"),
		TokenEndpoint:     f.Getenv("PIAUTH_TOKEN_URL"),
		HTTP:              f.HTTPClient,
		Now:               f.Now,
	}
}

// BaseURL is the Messages API origin: ANTHROPIC_BASE_URL without a trailing
// slash, else https://api.anthropic.com.
func (f *Factory) BaseURL() string {
	if u := strings.TrimRight(f.Getenv("ANTHROPIC_BASE_URL"), "/"); u != "" {
		return u
	}
	return defaultBaseURL
}

// Refresher hands out valid tokens from auth.json and the pool, refreshing
// them (single-flight across processes) with OAuthConfig's token endpoint.
// Warnings go to stderr.
func (f *Factory) Refresher() (*pkce.Refresher, error) {
	store, err := f.Store()
	if err != nil {
		return nil, err
	}
	return &pkce.Refresher{Store: store, OAuth: f.OAuthConfig(), Now: f.Now, Warn: f.IO.ErrOut}, nil
}
