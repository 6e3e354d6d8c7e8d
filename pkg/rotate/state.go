package rotate

// State changes of pooled keys after an answer: cooldowns, refreshes,
// needs-reauth marks, evictions and the healthy answer that clears them. Each
// is one locked read-modify-write of the pool file (Store.UpdatePool), so
// every process sees it.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
)

// cool records that key tok (index i of n) failed with class: it cools
// down until the answer's reset (Cooldown) and the request moves on. A key
// already cooling keeps the cooldown recorded for it (by another request,
// process or machine) unless this answer names an end more than
// cooldownSlack later: concurrent 429s of one key record one cooldown.
func (t *Transport) cool(ctx context.Context, tok string, i, n int, class Class, h http.Header, a *attempt) (*keystore.Pool, error) {
	now := t.Source.now()
	until := Cooldown(h, class, now)
	reason := keystore.ReasonRateLimit
	if class == ClassOverloaded {
		reason = keystore.ReasonOverloaded
	}
	return t.setAside(ctx, tok, i, n, a, "record the cooldown of", func(st *keystore.KeyState) bool {
		if st.CooldownUntil.After(now) && !until.After(st.CooldownUntil.Add(cooldownSlack)) {
			return false // already cooling: recorded once
		}
		st.CooldownUntil = until
		st.CooldownReason = reason
		if u, ok := ParseUnified(h); ok {
			st.UnifiedStatus, st.Utilization, st.FiveHour = u.Status, u.Utilization, u.FiveHour
		}
		return true
	})
}

// cooldownSlack is how much later than the recorded end a new 429 of a
// cooling key must say before the cooldown is recorded again (retry-after
// is relative: each answer's end is a little later than the previous one's).
const cooldownSlack = time.Minute

// disable takes key tok (index i of n) out of rotation because the service
// refused its account (403, OAuth not allowed for its organization).
func (t *Transport) disable(ctx context.Context, tok string, i, n int, a *attempt) (*keystore.Pool, error) {
	return t.setAside(ctx, tok, i, n, a, "mark disabled", func(st *keystore.KeyState) bool { st.Disabled = true; return true })
}

// setAside applies mark to key tok's state, moves Active to the next usable
// key and sets the rotated mark, in one locked write, and says on Log what
// the key is now and what comes next (or that it was already set aside,
// when mark changed nothing: another request recorded it). It returns the
// updated pool.
func (t *Transport) setAside(ctx context.Context, tok string, i, n int, a *attempt, what string, mark func(*keystore.KeyState) bool) (*keystore.Pool, error) {
	now := t.Source.now()
	next := -1
	var status keystore.KeyStatus
	recorded := false
	tried := maps.Clone(a.tried) // fn may run later (a shared store away): not the request's live map
	p, err := t.Source.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
		recorded = false // the run that is written decides (a shared store may retry)
		if j := p.Find(tok); j >= 0 {
			recorded = mark(p.State(j))
			status = p.Status(j, now)
		}
		if next = choose(p, tried, "", now); next >= 0 {
			p.Active = next
		}
		p.Rotated = true
		n = len(p.Keys)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s key %d/%d: %w", what, i+1, n, err)
	}
	then := "no other key is ready"
	if next >= 0 {
		then = fmt.Sprintf("trying key %d/%d", next+1, n)
	}
	if !recorded {
		t.logf("🔑 key %d/%d (%s) already %s (recorded by another request); %s", i+1, n, keystore.Mask(tok), status.Describe(now), then)
		return p, nil
	}
	t.logf("🔑 key %d/%d (%s) %s; %s", i+1, n, keystore.Mask(tok), status.Describe(now), then)
	return p, nil
}

// refreshExpired renews expired key tok and makes it the next key tried; a
// key that cannot be renewed is marked needs-reauth, and after a passing
// failure the old token is still tried (its recorded expiry may be wrong).
func (t *Transport) refreshExpired(ctx context.Context, tok string, i, n int, a *attempt) (*keystore.Pool, error) {
	fp := keystore.Fingerprint(tok)
	newTok, err := t.Source.refresher().PoolToken(ctx, fp, false)
	switch {
	case err == nil && newTok != tok:
		nfp := keystore.Fingerprint(newTok)
		a.refreshed[nfp], a.prefer = true, nfp
		return t.pool()
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && NeedsLogin(err):
		return t.markReauth(ctx, tok, i, n, "expired and its refresh failed: "+err.Error())
	}
	// Unchanged or not renewed for now: try the key as it is, once; a 401
	// will not force another refresh.
	delete(a.tried, fp)
	a.prefer, a.refreshed[fp] = fp, false
	return t.pool()
}

// authFailed handles a refused key: an API key is evicted; an OAuth key is
// refreshed once (and retried first), else marked needs-reauth.
func (t *Transport) authFailed(ctx context.Context, tok string, i, n int, cause error, a *attempt) (*keystore.Pool, error) {
	fp := keystore.Fingerprint(tok)
	label := fmt.Sprintf("key %d/%d (%s)", i+1, n, keystore.Mask(tok))
	if keystore.KindOf(tok) == keystore.KindAPI {
		// The seed deletes a refused API key; one refusal must never destroy
		// the only copy of a secret: it is kept (file and keyring) as revoked.
		p, err := t.setMark(ctx, tok, true)
		if err != nil {
			return nil, fmt.Errorf("mark %s revoked: %w", label, err)
		}
		a.marks = append(a.marks, mark{tok: tok, revoked: true})
		t.logf("🔑 revoked: %s was refused (%s); skipped from now on, kept in the file and the keyring (`piauth key prune` deletes revoked keys, `piauth key reset --revoked` brings them back)", label, short(cause))
		return p, nil
	}
	renewed, attempted := a.refreshed[fp]
	if attempted && !renewed {
		t.logf("🔑 %s was refused and could not be refreshed now; trying the next key", label)
		return t.pool()
	}
	if !attempted && t.Source.Refresher != nil {
		newTok, err := t.Source.refresher().PoolToken(ctx, fp, true)
		if err == nil && newTok == tok {
			err = errors.New("the refresh did not change the token")
		}
		switch {
		case err == nil:
			nfp := keystore.Fingerprint(newTok)
			a.refreshed[nfp], a.prefer = true, nfp
			t.logf("🔑 refreshed: %s was refused; retrying with its new token %s", label, keystore.Mask(newTok))
			return t.pool()
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !NeedsLogin(err):
			t.logf("🔑 %s was refused and could not be refreshed now (%v); trying the next key", label, err)
			return t.pool()
		}
		return t.markReauth(ctx, tok, i, n, "was refused ("+short(cause)+") and its refresh failed: "+err.Error())
	}
	// Refused again after a refresh, or with no way to refresh: the refusal
	// came from the Messages API, so refusesAll may take it back.
	a.marks = append(a.marks, mark{tok: tok})
	return t.markReauth(ctx, tok, i, n, "was refused ("+short(cause)+")")
}

// setMark sets the revoked (else needs-reauth) flag of key tok.
func (t *Transport) setMark(ctx context.Context, tok string, revoked bool) (*keystore.Pool, error) {
	return t.Source.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
		if j := p.Find(tok); j >= 0 {
			if revoked {
				p.State(j).Revoked = true
			} else {
				p.State(j).NeedsReauth = true
			}
		}
		return nil
	})
}

// refusesAll ends a request in which n different keys were refused: it
// clears the marks this request set because of those refusals and returns
// an *UpstreamRefusedError naming the base URL.
func (t *Transport) refusesAll(ctx context.Context, req *http.Request, n int, cause error, a *attempt) error {
	if len(a.marks) > 0 {
		_, err := t.Source.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
			for _, m := range a.marks {
				if j := p.Find(m.tok); j >= 0 {
					if m.revoked {
						p.State(j).Revoked = false
					} else {
						p.State(j).NeedsReauth = false
					}
				}
			}
			return nil
		})
		if err != nil {
			t.logf("piauth: warning: could not take back the marks of this request: %v", err)
		}
	}
	e := &UpstreamRefusedError{BaseURL: req.URL.Scheme + "://" + req.URL.Host, Keys: n, Cause: short(cause)}
	t.logf("🔑 %v", e)
	return e
}

// markReauth marks key tok (index i of n) as needing a new login; why ends
// "key i/n (masked) …" on Log.
func (t *Transport) markReauth(ctx context.Context, tok string, i, n int, why string) (*keystore.Pool, error) {
	label := fmt.Sprintf("key %d/%d (%s)", i+1, n, keystore.Mask(tok))
	p, err := t.setMark(ctx, tok, false)
	if err != nil {
		return nil, fmt.Errorf("mark %s needs-reauth: %w", label, err)
	}
	t.logf("🔑 needs re-login: %s %s; `piauth login --add-to-pool` or `piauth key remove` fixes it", label, why)
	return p, nil
}

func (t *Transport) pool() (*keystore.Pool, error) {
	p, err := t.Source.Store.Pool()
	if err != nil {
		return nil, fmt.Errorf("read key pool: %w", err)
	}
	return p, nil
}

// succeed records a healthy answer of key tok: unified status, the active
// key and the rotated mark, writing only when something changed. A failure to
// record is reported on Log; the answer is still returned.
func (t *Transport) succeed(ctx context.Context, p *keystore.Pool, tok string, h http.Header, a *attempt) {
	now := t.Source.now()
	fp := keystore.Fingerprint(tok)
	i := p.Find(tok)
	rotated := a.rotated
	// A pinned conversation answered on its own key: the pool's active key
	// (where new conversations start) stays where it is.
	keepActive := a.pinned == fp
	if keepActive {
		i, rotated = p.Active, p.Rotated
	}
	u, hasU := ParseUnified(h)
	st := p.States[fp]
	if st == nil {
		st = &keystore.KeyState{}
	}
	changed := i != p.Active || p.Rotated != rotated || !st.CooldownUntil.IsZero() ||
		(hasU && (st.UnifiedStatus != u.Status || math.Abs(st.Utilization-u.Utilization) >= 0.01 ||
			math.Abs(st.FiveHour-u.FiveHour) >= 0.01))
	var until time.Time
	if hasU && u.Status == "rejected" {
		// Answered, but the next request would be refused: skip the key
		// until its window resets.
		until, changed = Cooldown(h, ClassRotate, now), true
	}
	if changed {
		np, err := t.Source.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
			j := p.Find(tok)
			if j < 0 {
				return nil
			}
			if !keepActive {
				p.Active, p.Rotated = j, rotated
			}
			s := p.State(j)
			if !s.CooldownUntil.After(now) {
				s.CooldownUntil, s.CooldownReason = time.Time{}, ""
			}
			if hasU {
				s.UnifiedStatus, s.Utilization, s.FiveHour = u.Status, u.Utilization, u.FiveHour
			}
			if !until.IsZero() {
				s.CooldownUntil, s.CooldownReason = until, keystore.ReasonRateLimit
			}
			return nil
		})
		if err != nil {
			t.logf("piauth: warning: could not record the key state: %v", err)
		} else {
			p = np
		}
	}
	if i = p.Find(tok); i >= 0 {
		a.pin.set(fp, i+1, len(p.Keys))
		t.report(i+1, len(p.Keys), a.rotated)
	}
}
