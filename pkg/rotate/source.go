package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// Refresher hands out valid tokens, refreshing them single-flight across
// processes; *pkce.Refresher implements it.
type Refresher interface {
	// AuthToken returns auth.json's credential, refreshed first when it has
	// expired (or when force is set).
	AuthToken(ctx context.Context, force bool) (*keystore.Credential, error)
	// PoolToken returns the (new) access token of the pooled key whose
	// fingerprint is fp, refreshed first when it has expired (or when force
	// is set), replacing it in the pool.
	PoolToken(ctx context.Context, fp string, force bool) (string, error)
}

// Mode is where requests take their credential from.
type Mode int

// Modes.
const (
	// ModeNone: neither a login nor a pooled key; log in first.
	ModeNone Mode = iota
	// ModeLogin: auth.json's login.
	ModeLogin
	// ModePool: the key pool (it rotates when it holds 2 or more keys).
	ModePool
)

// String returns "none", "login" or "pool".
func (m Mode) String() string {
	switch m {
	case ModeLogin:
		return "login"
	case ModePool:
		return "pool"
	}
	return "none"
}

// ModeFor is the one rule that chooses between the login and the pool: a
// pool of two or more keys rotates (as the seed extension does); otherwise
// the login is used when there is one, else a pool of exactly one key.
func ModeFor(poolSize int, loggedIn bool) Mode {
	switch {
	case poolSize >= 2:
		return ModePool
	case loggedIn:
		return ModeLogin
	case poolSize == 1:
		return ModePool
	}
	return ModeNone
}

// Credential is the credential chosen for one request.
type Credential struct {
	Token  string
	Pooled bool // a pool key (else auth.json's login)
	Index  int  // 0-based index in the pool when Pooled
	N      int  // pool size when Pooled
	Active int  // 0-based index of the pool's active key when Pooled
}

// Source answers, for every command, "which credential does this request
// use, valid now": chat, token, status, the proxy and the rotating Transport
// all ask it. It reads the files on every call, so every process sees the
// same pool state. It is safe for concurrent use.
type Source struct {
	Store     *keystore.Store
	Refresher Refresher
	Now       func() time.Time // time.Now when nil
	// SwitchAt, when above 0, is a utilisation percent (PIAUTH_SWITCH_AT,
	// --switch-at): once the active key's last reported 5-hour utilisation
	// reaches it, the Transport starts new requests on the usable key with
	// the most headroom below it (see switchKey), and the first answer
	// records the move; 0 keeps the active key while it is usable.
	SwitchAt float64
	// SwitchLog, when set, gets one line each time SwitchAt moves new
	// requests to another key (masked keys).
	SwitchLog io.Writer
}

func (s *Source) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Files reads auth.json and the pool and says which Mode requests use.
// login is nil when logged out.
func (s *Source) Files() (mode Mode, p *keystore.Pool, login *keystore.Credential, err error) {
	p, err = s.Store.Pool()
	if err != nil {
		return ModeNone, nil, nil, fmt.Errorf("read key pool: %w", err)
	}
	login, err = s.Store.Auth()
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		login, err = nil, nil
	case err != nil:
		return ModeNone, nil, nil, err
	case login.Token() == "":
		login = nil
	}
	return ModeFor(len(p.Keys), login != nil), p, login, nil
}

// Check fails, with an error NeedsLogin recognises, when no credential is
// configured at all; it does not test the credential (no network).
func (s *Source) Check() (Mode, error) {
	mode, _, _, err := s.Files()
	if err == nil && mode == ModeNone {
		err = pkce.ErrNotLoggedIn
	}
	return mode, err
}

// ErrRefreshFailed means a forced refresh (token --refresh) did not renew
// the token; the current one may still be valid, but the caller asked for a
// new one.
var ErrRefreshFailed = errors.New("the refresh did not renew the token")

// Token returns the credential the next request would use, refreshed first
// when needed (force: refreshed even if still valid, when it can be; a
// forced refresh that leaves the token as it was fails with an error
// wrapping ErrRefreshFailed). It does not move the pool's active key. A
// pooled key whose refresh fails for good is skipped (it is marked
// needs-reauth by the Refresher) and the next usable key is tried; skipped
// is the list of what was skipped and why. A cancelled ctx always fails.
func (s *Source) Token(ctx context.Context, force bool) (c Credential, skipped []string, err error) {
	c, skipped, err = s.token(ctx, force)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return Credential{}, skipped, ctxErr // never hand out a token after Ctrl-C
	}
	return c, skipped, err
}

func (s *Source) token(ctx context.Context, force bool) (c Credential, skipped []string, err error) {
	mode, p, login, err := s.Files()
	switch {
	case err != nil:
		return Credential{}, nil, err
	case mode == ModeNone:
		return Credential{}, nil, pkce.ErrNotLoggedIn
	case mode == ModeLogin:
		lc, err := s.refresher().AuthToken(ctx, force)
		if err != nil {
			return Credential{}, nil, err
		}
		if force && login.Type == "oauth" && lc.Token() == login.Token() {
			return Credential{}, nil, fmt.Errorf("login (%s): %w", keystore.Mask(login.Token()), ErrRefreshFailed)
		}
		return Credential{Token: lc.Token()}, nil, nil
	}
	tried := map[string]bool{}
	for range p.Keys {
		i := choose(p, tried, "", s.now())
		if i < 0 {
			return Credential{}, skipped, exhausted(p, s.now(), nil)
		}
		key := p.Keys[i]
		fp := keystore.Fingerprint(key)
		tried[fp] = true
		canForce := keystore.KindOf(key) == keystore.KindOAuth && p.State(i).Refresh != ""
		tok, err := s.refresher().PoolToken(ctx, fp, force && canForce)
		switch {
		case err == nil && force && canForce && tok == key:
			return Credential{}, skipped, fmt.Errorf("key %d (%s): %w", i+1, keystore.Mask(key), ErrRefreshFailed)
		case err == nil:
			return Credential{Token: tok, Pooled: true, Index: i, N: len(p.Keys), Active: p.ActiveIndex()}, skipped, nil
		case NeedsLogin(err):
			skipped = append(skipped, err.Error())
			continue
		}
		return Credential{}, skipped, err
	}
	return Credential{}, skipped, fmt.Errorf("%w in the pool of %d", ErrNoUsableKey, len(p.Keys))
}

// Next returns the index of the key a request would use now: the active
// key while it is usable, else the ready key with the lowest reported
// utilisation. With no usable key it returns an *AllLimitedError, or an
// error wrapping ErrNoUsableKey.
func Next(p *keystore.Pool, now time.Time) (int, error) {
	if i := choose(p, nil, "", now); i >= 0 {
		return i, nil
	}
	return -1, exhausted(p, now, nil)
}

// choose returns the index of the key to try next: the preferred key, else
// the active key while it is usable (keeps the prompt cache warm), else the
// usable key with the lowest reported utilisation (ties: the first after the
// active one). Keys in tried are skipped. With none left it returns -1.
func choose(p *keystore.Pool, tried map[string]bool, prefer string, now time.Time) int {
	n := len(p.Keys)
	ready := func(i int) bool {
		return !tried[keystore.Fingerprint(p.Keys[i])] && p.Status(i, now).State.Usable()
	}
	if prefer != "" {
		if i := p.Find(prefer); i >= 0 && ready(i) {
			return i
		}
	}
	active := p.ActiveIndex()
	if n > 0 && ready(active) {
		return active
	}
	best := -1
	for k := 1; k <= n; k++ {
		if i := (active + k) % n; ready(i) && (best < 0 || utilization(p, i) < utilization(p, best)) {
			best = i
		}
	}
	return best
}

// switchTo is the key a new request starts on because of SwitchAt
// (switchKey), said once on SwitchLog; -1 when SwitchAt keeps the active key.
func (s *Source) switchTo(p *keystore.Pool) int {
	if s.SwitchAt <= 0 {
		return -1
	}
	i := switchKey(p, s.SwitchAt, s.now())
	if i >= 0 && s.SwitchLog != nil {
		a := p.ActiveIndex()
		fmt.Fprintf(s.SwitchLog, "🔑 key %d/%d (%s) reports %.0f%% of its 5-hour window used (switch at %g%%); new requests use key %d/%d (%.0f%%)\n",
			a+1, len(p.Keys), keystore.Mask(p.Keys[a]), 100*fiveHour(p, a), s.SwitchAt, i+1, len(p.Keys), 100*fiveHour(p, i))
	}
	return i
}

// switchKey is the switch-at rule: when the active key is usable and its
// last reported 5-hour utilisation (KeyState.FiveHour, a fraction from the
// answers' unified headers) is at least switchAt percent, it returns the
// usable key with the lowest 5-hour utilisation below switchAt (ties: the
// first after the active key). Otherwise — below the mark, not usable (rotation
// handles that), or no key with headroom — it returns -1: the active key
// is kept, and with it the prompt cache of the conversation on it.
func switchKey(p *keystore.Pool, switchAt float64, now time.Time) int {
	n := len(p.Keys)
	active := p.ActiveIndex()
	if switchAt <= 0 || n < 2 || !p.Status(active, now).State.Usable() || 100*fiveHour(p, active) < switchAt {
		return -1
	}
	best := -1
	for k := 1; k < n; k++ {
		i := (active + k) % n
		if u := 100 * fiveHour(p, i); u < switchAt && p.Status(i, now).State.Usable() &&
			(best < 0 || u < 100*fiveHour(p, best)) {
			best = i
		}
	}
	return best
}

// fiveHour is key i's last reported 5-hour utilisation (a fraction).
func fiveHour(p *keystore.Pool, i int) float64 {
	if st := p.States[keystore.Fingerprint(p.Keys[i])]; st != nil {
		return st.FiveHour
	}
	return 0
}

func utilization(p *keystore.Pool, i int) float64 {
	if st := p.States[keystore.Fingerprint(p.Keys[i])]; st != nil {
		return st.Utilization
	}
	return 0
}

// SkipReason says, in one line, why the next request would not use key i
// although it is ready: another ready key reports a lower utilisation.
// It is "" when key i is the one chosen, or not ready.
func SkipReason(p *keystore.Pool, i int, now time.Time) string {
	if p.Status(i, now).State != keystore.StateReady {
		return ""
	}
	next := choose(p, nil, "", now)
	if next < 0 || next == i || next == p.ActiveIndex() {
		return ""
	}
	return fmt.Sprintf("key %d is used first: it reports lower utilisation (%.0f%% < %.0f%%)",
		next+1, 100*utilization(p, next), 100*utilization(p, i))
}

// exhausted builds the error for a request that ran out of keys: an
// *AllLimitedError when some key is cooling down, else ErrNoUsableKey
// (wrapping last, the failure of the last key tried, when there is one).
func exhausted(p *keystore.Pool, now time.Time, last error) error {
	var free time.Time
	cooling, overloaded := 0, 0
	for i := range p.Keys {
		s := p.Status(i, now)
		if s.State != keystore.StateCooling {
			continue
		}
		cooling++
		if p.State(i).CooldownReason == keystore.ReasonOverloaded {
			overloaded++
		}
		if free.IsZero() || s.Until.Before(free) {
			free = s.Until
		}
	}
	switch {
	case cooling > 0:
		return &AllLimitedError{N: cooling, Overloaded: overloaded == cooling, FreeAt: free, At: now}
	case len(p.Keys) == 0:
		return fmt.Errorf("%w: the key pool is empty", ErrNoUsableKey)
	case last != nil:
		return fmt.Errorf("%w: %w", ErrNoUsableKey, last)
	}
	return fmt.Errorf("%w: every pooled key needs a new login (piauth login --add-to-pool)", ErrNoUsableKey)
}

// Indicator is the key indicator of the seed's status bar, the same in
// chat's accounting line, status and the proxy log: "🔑 2/3", "🔑 2/3
// (rotated)"; "" for a request sent with the login (i is 1-based).
func Indicator(i, n int, rotated bool) string {
	switch {
	case i <= 0 || n <= 0:
		return ""
	case rotated:
		return fmt.Sprintf("🔑 %d/%d (rotated)", i, n)
	}
	return fmt.Sprintf("🔑 %d/%d", i, n)
}

// refresher is the Source's Refresher, or one that hands out the stored
// tokens as they are when none is set (nothing is ever refreshed then).
func (s *Source) refresher() Refresher {
	if s.Refresher != nil {
		return s.Refresher
	}
	return storeOnly{s.Store}
}

// storeOnly is a Refresher that never refreshes.
type storeOnly struct{ store *keystore.Store }

func (r storeOnly) AuthToken(_ context.Context, force bool) (*keystore.Credential, error) {
	c, err := r.store.Auth()
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return nil, pkce.ErrNotLoggedIn
	case err != nil:
		return nil, err
	case force:
		return nil, fmt.Errorf("the login: %w", pkce.ErrCannotRefresh)
	}
	return c, nil
}

func (r storeOnly) PoolToken(_ context.Context, fp string, force bool) (string, error) {
	p, err := r.store.Pool()
	if err != nil {
		return "", err
	}
	i := p.Follow(fp)
	switch {
	case i < 0:
		return "", fmt.Errorf("pooled key %s: %w", fp, keystore.ErrNotFound)
	case force:
		return "", fmt.Errorf("key %d (%s): %w", i+1, keystore.Mask(p.Keys[i]), pkce.ErrCannotRefresh)
	}
	return p.Keys[i], nil
}
