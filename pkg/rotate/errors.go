package rotate

import (
	"errors"
	"fmt"
	"time"

	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/stream"
)

var (
	// ErrAllKeysLimited is matched (errors.Is) by *AllLimitedError: every
	// usable key of the pool is cooling down.
	ErrAllKeysLimited = errors.New("all keys are rate-limited")
	// ErrNoUsableKey means the pool has no key left to try that is not
	// cooling down: it is empty, or its keys need a new login or failed.
	ErrNoUsableKey = errors.New("no usable key")
)

// ErrUpstreamRefused is matched by *UpstreamRefusedError.
var ErrUpstreamRefused = errors.New("the upstream refuses every key")

// UpstreamRefusedError reports that the API refused two or more different
// keys in one request. That is not what dead keys look like but what a wrong
// base URL, a proxy in between or an outage looks like, so no key was changed.
type UpstreamRefusedError struct {
	BaseURL string // scheme://host the request went to
	Keys    int    // different keys refused
	Cause   string // the last refusal, e.g. "HTTP 401 authentication_error"
}

func (e *UpstreamRefusedError) Error() string {
	return fmt.Sprintf("%s refused %d different keys (%s); no key was changed: check PIAUTH_BASE_URL and the network (a proxy in between?)",
		e.BaseURL, e.Keys, e.Cause)
}

// Is makes errors.Is(err, ErrUpstreamRefused) true.
func (e *UpstreamRefusedError) Is(target error) bool { return target == ErrUpstreamRefused }

// AllLimitedError reports that every usable key is cooling down.
type AllLimitedError struct {
	N          int       // keys cooling down
	Overloaded bool      // every one of them because the service is overloaded (529), none rate-limited
	FreeAt     time.Time // when the first of them becomes usable again
	// At is when the error was made; the "(in …)" of Error is FreeAt-At
	// (time.Now when zero).
	At time.Time
}

// Error reads "all N keys are rate-limited; first one frees at 18:04:05 (in 9m55s)".
func (e *AllLimitedError) Error() string {
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	what := "rate-limited"
	if e.Overloaded {
		what = "overloaded"
	}
	if e.N == 1 {
		return "the only usable key is " + what + "; it frees at " + when.Until(e.FreeAt, at)
	}
	return fmt.Sprintf("all %d keys are %s; first one frees at %s", e.N, what, when.Until(e.FreeAt, at))
}

// Is makes errors.Is(err, ErrAllKeysLimited) true.
func (e *AllLimitedError) Is(target error) bool { return target == ErrAllKeysLimited }

// NeedsLogin is the one predicate for errors that mean "log in first": no
// login, a login or pooled key that only a new login can bring back, a key
// that cannot be refreshed or whose refresh token was rejected, no usable
// key in the pool, or the API refusing the credential it was sent (401).
// Commands exit 3 on them and the proxy answers 401.
func NeedsLogin(err error) bool {
	var ae *stream.APIError
	return errors.Is(err, pkce.ErrNotLoggedIn) || errors.Is(err, pkce.ErrNeedsLogin) ||
		errors.Is(err, pkce.ErrInvalidGrant) ||
		errors.Is(err, pkce.ErrCannotRefresh) || errors.Is(err, ErrNoUsableKey) ||
		errors.As(err, &ae) && (ae.Status == 401 || ae.Type == "authentication_error")
}
