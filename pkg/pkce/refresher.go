package pkce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// Sentinel errors of the Refresher.
var (
	// ErrNotLoggedIn means auth.json holds no anthropic credential.
	ErrNotLoggedIn = errors.New("not logged in: run piauth login")
	// ErrNeedsLogin means the refresh token was rejected (invalid_grant) or is
	// missing on an expired credential. The credential is kept (a pooled copy
	// is marked NeedsReauth); only a new login fixes it. Errors wrapping it
	// from a rejected refresh also wrap ErrInvalidGrant.
	ErrNeedsLogin = errors.New("login expired or revoked: run piauth login")
	// ErrCannotRefresh means a pooled key cannot be refreshed: it is an API key
	// or has no refresh token (e.g. an access token pooled by the seed).
	ErrCannotRefresh = errors.New("key cannot be refreshed")
)

// AccountField is the field of auth.json's anthropic entry where piauth keeps
// the account email. pi drops it when it rewrites the entry; pooled copies keep
// theirs in KeyState.Account.
const AccountField = "account"

// Refresher hands out valid access tokens from auth.json and the pool,
// refreshing them when expired. A refresh is single-flight across processes:
// it runs under auth.json.lock and the pool lock (Store.UpdateBoth), re-reads
// both files, refreshes only if the token is still expired, and writes the new
// access AND refresh token before the locks are released. An account that is
// both in auth.json and in the pool is refreshed once and both copies are
// written.
type Refresher struct {
	Store *keystore.Store
	OAuth *Config          // token endpoint; nil means the zero Config
	Now   func() time.Time // nil means time.Now
	Warn  io.Writer        // warnings (refresh failed, old token used); nil discards
}

func (r *Refresher) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Refresher) warnf(format string, a ...any) {
	if r.Warn != nil {
		fmt.Fprintf(r.Warn, "piauth: warning: "+format+"\n", a...)
	}
}

// AuthToken returns auth.json's credential, refreshed first when it is an
// OAuth credential that has expired (or when force is set). It fails with
// ErrNotLoggedIn when there is no credential and with an error wrapping
// ErrNeedsLogin when the refresh token was rejected. When a forced refresh
// fails for another reason while the current token is still valid, the
// current credential is returned and a warning is written to Warn.
func (r *Refresher) AuthToken(ctx context.Context, force bool) (*keystore.Credential, error) {
	cur, err := r.Store.Auth()
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	if cur.Type != "oauth" || (!force && !cur.Expired(r.now())) {
		return cur, nil
	}
	if cur.Refresh == "" {
		return r.noRefresh(cur)
	}
	var out *keystore.Credential
	var outErr error
	_, err = r.Store.UpdateBoth(ctx, func(a **keystore.Credential, p *keystore.Pool) error {
		c := *a
		if c == nil {
			return ErrNotLoggedIn // logged out meanwhile
		}
		now := r.now()
		switch {
		case c.Type != "oauth", !force && !c.Expired(now):
			out = c // refreshed by another process while we waited
			return nil
		case c.Access != cur.Access && !c.Expired(now):
			out = c // forced, but another process just refreshed it
			return nil
		}
		out, outErr = r.refreshAuth(ctx, c, p, now)
		return nil // write what changed (new tokens or a NeedsReauth mark) even on failure
	})
	if err != nil {
		return nil, err
	}
	return out, outErr
}

// refreshAuth refreshes auth.json's credential c (under the locks) and its
// pooled copy, if any.
func (r *Refresher) refreshAuth(ctx context.Context, c *keystore.Credential, p *keystore.Pool, now time.Time) (*keystore.Credential, error) {
	if c.Refresh == "" {
		return r.noRefresh(c)
	}
	i := LinkedKey(p, c)
	tok, err := r.OAuth.Refresh(ctx, c.Refresh)
	r.keepRefresh(tok, err, c, p, i)
	switch {
	case err == nil:
		r.apply(tok, c, p, i)
		return c, nil
	case errors.Is(err, ErrInvalidGrant):
		if i >= 0 {
			p.State(i).NeedsReauth = true
		}
		return nil, fmt.Errorf("%w: %w", ErrNeedsLogin, err)
	case !c.Expired(now):
		r.warnf("could not refresh the login (%v); using the current token, valid until %s",
			err, time.UnixMilli(c.Expires).UTC().Format(time.RFC3339))
		return c, nil
	default:
		return nil, fmt.Errorf("refresh expired login: %w", err)
	}
}

// noRefresh handles an OAuth credential without a refresh token that should
// be refreshed: usable until it expires, then only a new login helps.
func (r *Refresher) noRefresh(c *keystore.Credential) (*keystore.Credential, error) {
	if c.Expired(r.now()) {
		return nil, fmt.Errorf("%w (the stored login has no refresh token)", ErrNeedsLogin)
	}
	r.warnf("the stored login has no refresh token; using the current token")
	return c, nil
}

// PoolToken returns the pooled key with fingerprint fp (or a unique prefix of
// at least 6 characters), refreshed first when it is an expired OAuth key or
// when force is set. API keys are returned as they are, or fail with
// ErrCannotRefresh when force is set; so do OAuth keys without a refresh
// token when forced or expired. A rejected refresh marks the key NeedsReauth
// and fails with an error wrapping ErrNeedsLogin and ErrInvalidGrant. When
// the account is also auth.json's, both copies are written.
//
// When a forced refresh fails for another reason (network, 5xx after the
// retries) while the key has not expired, the unchanged key is returned with a
// warning on Warn: callers that forced a refresh after a 401 should treat an
// unchanged token as a failure. A key replaced by a refresh since the caller
// read its fingerprint is followed to its new token (keystore.Pool.Follow).
func (r *Refresher) PoolToken(ctx context.Context, fp string, force bool) (string, error) {
	p, err := r.Store.Pool()
	if err != nil {
		return "", err
	}
	i := p.Follow(fp)
	if i < 0 {
		return "", fmt.Errorf("pooled key %s: %w", fp, keystore.ErrNotFound)
	}
	tok := p.Keys[i]
	st := p.State(i)
	now := r.now()
	expired := keystore.ExpiredAt(st.Expires, now)
	switch {
	case keystore.KindOf(tok) == keystore.KindAPI:
		if force {
			return "", fmt.Errorf("key %d (%s) is an API key: %w", i+1, keystore.Mask(tok), ErrCannotRefresh)
		}
		return tok, nil
	case !force && !expired:
		return tok, nil
	case st.Refresh == "":
		why := "has no refresh token"
		if expired {
			why = "expired and has no refresh token"
		}
		return "", fmt.Errorf("key %d (%s) %s: %w", i+1, keystore.Mask(tok), why, ErrCannotRefresh)
	case st.NeedsReauth:
		return "", fmt.Errorf("key %d (%s) needs a new login (piauth login --add-to-pool): %w", i+1, keystore.Mask(tok), ErrNeedsLogin)
	}
	var out string
	var outErr error
	_, err = r.Store.UpdateBoth(ctx, func(a **keystore.Credential, q *keystore.Pool) error {
		now := r.now()
		j := q.Follow(keystore.Fingerprint(tok))
		if j < 0 {
			outErr = fmt.Errorf("pooled key %s was removed: %w", fp, keystore.ErrNotFound)
			return nil
		}
		st := q.States[keystore.Fingerprint(q.Keys[j])]
		switch {
		case st == nil || st.Refresh == "":
			outErr = fmt.Errorf("key %d (%s) has no refresh token: %w", j+1, keystore.Mask(q.Keys[j]), ErrCannotRefresh)
		case q.Keys[j] != tok && !keystore.ExpiredAt(st.Expires, now):
			out = q.Keys[j] // another process refreshed it while we waited
		case !force && !keystore.ExpiredAt(st.Expires, now):
			out = q.Keys[j]
		default:
			out, outErr = r.refreshPooled(ctx, q.Keys[j], st, *a, q, j, now)
		}
		return nil // write what changed (new tokens or a NeedsReauth mark) even on failure
	})
	if err != nil {
		return "", err
	}
	return out, outErr
}

// refreshPooled refreshes pool key j (token tok, state st) under the locks,
// and auth.json's credential c too when it is the same account.
func (r *Refresher) refreshPooled(ctx context.Context, tok string, st *keystore.KeyState, c *keystore.Credential, q *keystore.Pool, j int, now time.Time) (string, error) {
	if c != nil && LinkedKey(q, c) != j {
		c = nil
	}
	resp, err := r.OAuth.Refresh(ctx, st.Refresh)
	r.keepRefresh(resp, err, c, q, j)
	switch {
	case err == nil:
		r.apply(resp, c, q, j)
		return resp.AccessToken, nil
	case errors.Is(err, ErrInvalidGrant):
		st.NeedsReauth = true
		return "", fmt.Errorf("key %d (%s): %w: %w", j+1, keystore.Mask(tok), ErrNeedsLogin, err)
	case !keystore.ExpiredAt(st.Expires, now):
		r.warnf("could not refresh key %d (%s): %v; using the current token", j+1, keystore.Mask(tok), err)
		return tok, nil
	default:
		return "", fmt.Errorf("refresh key %d (%s): %w", j+1, keystore.Mask(tok), err)
	}
}

// apply writes a refreshed token into auth.json's credential c (when not nil)
// and into pool key i (when ≥ 0).
func (r *Refresher) apply(tok *Token, c *keystore.Credential, p *keystore.Pool, i int) {
	expires := tok.ExpiresAtMs(r.now())
	email := ""
	if tok.Account != nil {
		email = tok.Account.Email
	}
	if c != nil {
		c.Access, c.Refresh, c.Expires = tok.AccessToken, tok.RefreshToken, expires
		if email != "" {
			_ = c.SetField(AccountField, email) // a string always encodes
		}
	}
	if i >= 0 {
		p.Replace(i, tok.AccessToken)
		st := p.State(i)
		st.Refresh, st.Expires, st.NeedsReauth = tok.RefreshToken, expires, false
		if email != "" {
			st.Account = email
		}
	}
}

// keepRefresh stores the new refresh token of a partial answer (ErrIncompleteToken):
// the server has revoked the old one, so dropping it would log the account out.
func (r *Refresher) keepRefresh(tok *Token, err error, c *keystore.Credential, p *keystore.Pool, i int) {
	if err == nil || tok == nil || tok.RefreshToken == "" || !errors.Is(err, ErrIncompleteToken) {
		return
	}
	if c != nil {
		c.Refresh = tok.RefreshToken
	}
	if i >= 0 {
		p.State(i).Refresh = tok.RefreshToken
	}
}

// LinkedKey returns the index of the pool key that is the same account as
// auth.json's OAuth credential c — same refresh token, or the same access
// token (pooled by the seed's /key-add) — or -1.
func LinkedKey(p *keystore.Pool, c *keystore.Credential) int {
	if c == nil || c.Type != "oauth" {
		return -1
	}
	for i, k := range p.Keys {
		if c.Access != "" && k == c.Access {
			return i
		}
		if st := p.States[keystore.Fingerprint(k)]; st != nil && c.Refresh != "" && st.Refresh == c.Refresh {
			return i
		}
	}
	return -1
}
