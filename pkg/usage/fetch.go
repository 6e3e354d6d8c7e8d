package usage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/when"
)

// MinMaxAge is the shortest time an answer is reused: the endpoint
// rate-limits itself.
const MinMaxAge = 60 * time.Second

// Account is one credential to ask about.
type Account struct {
	// Fingerprint keys the cache: secret.Fingerprint (= keystore.Fingerprint)
	// of the token as stored. An answer fetched with a refreshed token is
	// recorded under the new token's fingerprint, the one the pool holds next.
	Fingerprint string
	// Token returns a valid access token, refreshed first when it has
	// expired; called only when the network is asked.
	Token func(ctx context.Context) (string, error)
}

// Result is the outcome for one Account.
type Result struct {
	Report    *Report   // nil when none is known (Err says why)
	FetchedAt time.Time // when Report was fetched
	Cached    bool      // Report came from the cache, not this call
	Err       error     // the failure of this call; Report may still be a stale one
}

// WaitError is returned for a key the endpoint asked not to be asked about
// before Until (retry-after); no request was sent.
type WaitError struct{ Until, Now time.Time }

func (e *WaitError) Error() string {
	return "usage endpoint asked to wait: next try " + when.Until(e.Until, e.Now)
}

// Fetcher asks the usage endpoint for many accounts at once, through the
// cache.
type Fetcher struct {
	Client *Client
	Cache  *Cache // nil: no cache
	// MaxAge is how long an answer is reused (raised to MinMaxAge).
	MaxAge time.Duration
	// MaxWait is the longest retry-after slept through before one retry
	// (default 5 s); a longer one is recorded and reported.
	MaxWait time.Duration
	// Jitter returns a random wait in [0, max) added before each request and
	// each retry, so that accounts do not hit the endpoint in lockstep; nil:
	// none.
	Jitter func(max time.Duration) time.Duration
	Now    func() time.Time                                 // time.Now when nil
	Sleep  func(ctx context.Context, d time.Duration) error // when.Sleep when nil
}

// jitterMax is the spread of requests started together.
const jitterMax = 250 * time.Millisecond

func (f *Fetcher) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fetcher) sleep(ctx context.Context, d time.Duration) error {
	if f.Sleep != nil {
		return f.Sleep(ctx, d)
	}
	return when.Sleep(ctx, d)
}

func (f *Fetcher) jitter(max time.Duration) time.Duration {
	if f.Jitter == nil {
		return 0
	}
	return f.Jitter(max)
}

// Cached returns the cached entries without asking the network (an empty
// map when there is no cache or it cannot be read).
func (f *Fetcher) Cached() map[string]Entry {
	if f.Cache == nil {
		return map[string]Entry{}
	}
	m, err := f.Cache.Load()
	if err != nil {
		return map[string]Entry{}
	}
	return m
}

// Fetch returns one Result per account, in order, asking the endpoint
// concurrently for those whose cached answer is older than MaxAge (all of
// them with fresh), never for one inside its retry-after, and records the
// answers in the cache.
func (f *Fetcher) Fetch(ctx context.Context, accounts []Account, fresh bool) []Result {
	cached := f.Cached()
	maxAge := max(f.MaxAge, MinMaxAge)
	results := make([]Result, len(accounts))
	updates := make([]*Entry, len(accounts))
	keys := make([]string, len(accounts)) // the fingerprint each update is recorded under
	var wg sync.WaitGroup
	for i, a := range accounts {
		e, ok := cached[a.Fingerprint]
		now := f.now()
		switch {
		case ok && e.Report != nil && !fresh && now.Sub(e.FetchedAt) < maxAge:
			results[i] = Result{Report: e.Report, FetchedAt: e.FetchedAt, Cached: true}
			continue
		case ok && e.RetryAt.After(now):
			results[i] = Result{Report: e.Report, FetchedAt: e.FetchedAt, Cached: e.Report != nil, Err: &WaitError{Until: e.RetryAt, Now: now}}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], updates[i], keys[i] = f.fetchOne(ctx, a, e)
		}()
	}
	wg.Wait()
	if f.Cache != nil {
		changed := map[string]Entry{}
		for i, u := range updates {
			if u != nil {
				changed[keys[i]] = *u
			}
		}
		_ = f.Cache.Store(ctx, changed) // a cache that cannot be written costs requests, not answers
	}
	return results
}

// fetchOne asks for one account (one retry after a short retry-after) and
// returns the result and the cache entry to record (nil: none) with the
// fingerprint to record it under: that of the token sent, which is a new
// one when Token refreshed it.
func (f *Fetcher) fetchOne(ctx context.Context, a Account, old Entry) (Result, *Entry, string) {
	maxWait := f.MaxWait
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	if err := f.sleep(ctx, f.jitter(jitterMax)); err != nil {
		return Result{Err: err}, nil, ""
	}
	tok, err := a.Token(ctx)
	if err != nil {
		return f.stale(old, err), nil, ""
	}
	fp := a.Fingerprint
	if tok != "" {
		fp = secret.Fingerprint(tok)
	}
	for try := 0; ; try++ {
		rep, err := f.Client.Fetch(ctx, tok)
		if err == nil {
			now := f.now()
			return Result{Report: rep, FetchedAt: now}, &Entry{FetchedAt: now, Report: rep}, fp
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
			return f.stale(old, err), nil, ""
		}
		wait := ae.RetryAfter
		if try == 0 && wait > 0 && wait <= maxWait {
			if err := f.sleep(ctx, wait+f.jitter(jitterMax)); err != nil {
				return f.stale(old, err), nil, ""
			}
			continue
		}
		if wait <= 0 {
			wait = max(f.MaxAge, MinMaxAge) // a 429 without retry-after: back off anyway
		}
		e := old
		e.RetryAt = f.now().Add(wait)
		return f.stale(old, fmt.Errorf("%w (next try %s)", err, when.Until(e.RetryAt, f.now()))), &e, fp
	}
}

// stale is a failed result that still carries the last known report.
func (f *Fetcher) stale(old Entry, err error) Result {
	return Result{Report: old.Report, FetchedAt: old.FetchedAt, Cached: old.Report != nil, Err: err}
}
