package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// messagesClient is what chat and proxy need to talk to the Messages API.
type messagesClient struct {
	HTTP     *http.Client  // its Transport adds credentials + OAuth shaping (and later rotation)
	BaseURL  string        // f.BaseURL(): ANTHROPIC_BASE_URL or https://api.anthropic.com
	KeyLabel func() string // "🔑 2/3" / "🔑 2/3 (rotated)" when a pool of ≥2 keys is used, else ""
}

// messagesOptions tune MessagesClient.
type messagesOptions struct {
	Wait bool // --wait: sleep until a rate-limited pool frees (rotation)
}

// MessagesClient returns a client for the Messages API whose transport
// authenticates every request: with the pool's active key when the pool holds
// two or more keys, else with auth.json's credential, refreshed when expired.
// It fails (exit 3) when no credential is usable. The client has no overall
// timeout: a stream lasts as long as the answer, and ctx cancels it.
func (f *Factory) MessagesClient(ctx context.Context, o messagesOptions) (*messagesClient, error) {
	store, err := f.Store()
	if err != nil {
		return nil, err
	}
	refresher, err := f.Refresher()
	if err != nil {
		return nil, err
	}
	if c, ok, err := f.rotatingClient(store, refresher, o); ok || err != nil {
		return c, err
	}
	src := &credentialSource{store: store, refresher: refresher}
	if _, err := src.token(ctx); err != nil {
		return nil, err
	}
	hc := *f.HTTPClient
	hc.Timeout = 0
	hc.Transport = &stream.TokenTransport{Base: f.HTTPClient.Transport, Token: src.token}
	return &messagesClient{HTTP: &hc, BaseURL: f.BaseURL(), KeyLabel: src.label}, nil
}

// rotatingClient returns a client whose transport rotates over the pool when
// it holds two or more keys (ok is false otherwise): a rate-limited,
// overloaded or refused key is skipped at once, with a line on stderr, and
// with o.Wait a fully rate-limited pool is waited for.
func (f *Factory) rotatingClient(store *keystore.Store, refresher *pkce.Refresher, o messagesOptions) (*messagesClient, bool, error) {
	p, err := store.Pool()
	if err != nil {
		return nil, false, fmt.Errorf("read key pool: %w", err)
	}
	if len(p.Keys) < 2 {
		return nil, false, nil
	}
	rt := &rotate.Transport{Base: f.HTTPClient.Transport, Store: store, Refresher: refresher,
		Log: f.IO.ErrOut, Now: f.Now, Wait: o.Wait}
	hc := *f.HTTPClient
	hc.Timeout = 0
	hc.Transport = rt
	label := func() string {
		if l := rt.KeyLabel(); l != "" {
			return "🔑 " + l
		}
		return ""
	}
	return &messagesClient{HTTP: &hc, BaseURL: f.BaseURL(), KeyLabel: label}, true, nil
}

// credentialSource picks the credential of each request and remembers which
// pooled key it used for the key label.
type credentialSource struct {
	store     *keystore.Store
	refresher *pkce.Refresher

	mu        sync.Mutex
	labelText string // label of the last request, "" without a pool
}

// token returns the credential for the next request. Errors that mean "log in
// first" exit with code 3.
func (s *credentialSource) token(ctx context.Context) (string, error) {
	tok, err := s.resolve(ctx)
	if errors.Is(err, pkce.ErrNotLoggedIn) || errors.Is(err, pkce.ErrNeedsLogin) ||
		errors.Is(err, pkce.ErrCannotRefresh) {
		return "", withCode(exitNoKey, err)
	}
	return tok, err
}

func (s *credentialSource) resolve(ctx context.Context) (string, error) {
	p, err := s.store.Pool()
	if err != nil {
		return "", fmt.Errorf("read key pool: %w", err)
	}
	if len(p.Keys) >= 2 {
		i := min(max(p.Active, 0), len(p.Keys)-1)
		tok, err := s.refresher.PoolToken(ctx, keystore.Fingerprint(p.Keys[i]), false)
		if err != nil {
			return "", err
		}
		label := fmt.Sprintf("🔑 %d/%d", i+1, len(p.Keys))
		if p.Rotated {
			label += " (rotated)"
		}
		s.setLabel(label)
		return tok, nil
	}
	s.setLabel("")
	c, err := s.refresher.AuthToken(ctx, false)
	if err != nil {
		return "", err
	}
	if c.Token() == "" {
		return "", pkce.ErrNotLoggedIn
	}
	return c.Token(), nil
}

// label is the key indicator of the last request ("" without a pool).
func (s *credentialSource) label() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.labelText
}

func (s *credentialSource) setLabel(l string) {
	s.mu.Lock()
	s.labelText = l
	s.mu.Unlock()
}
