package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/stream"
)

// maxWaitRounds bounds how often a Wait transport sleeps for a cooldown
// within one request.
const maxWaitRounds = 3

// Transport is an http.RoundTripper that sends each Messages request with the
// credential Source chooses. With the pool it rotates to the next usable key
// at once on a rate limit, an overload, or a refused credential; with the
// login it refreshes a refused token once. It is safe for concurrent use.
//
// Per request it tries each key at most once (plus one retry after a
// successful refresh) and never sleeps, except with Wait when every key is
// cooling down. Key state (cooldowns, unified status, needs-reauth, the active
// key) is persisted through the Source's Store, so every process shares it.
type Transport struct {
	Base   http.RoundTripper // nil means http.DefaultTransport
	Source *Source
	// Service shapes every request (identity, betas, tool names, the Claude
	// Code version in the user-agent); nil means stream.Builtin().
	Service *stream.Service
	// Learned is the path of piauth's learned.json (keystore.LearnedFileName
	// in the state dir): a Claude Code version the service asked for is
	// recorded there, shared by every process and never lowered. "" keeps
	// what is learnt in this Transport only.
	Learned string
	// Log receives one line per rotation, eviction or wait (masked keys).
	Log io.Writer
	// Sleep waits d or until ctx is done (when.Sleep when nil).
	Sleep func(ctx context.Context, d time.Duration) error
	// Wait makes the transport sleep until the first cooldown ends when every
	// key is cooling down, instead of failing with *AllLimitedError.
	Wait bool
	// MaxWait, with Wait, bounds the wait: the transport sleeps only when
	// the first cooldown ends within MaxWait, else it fails with
	// *AllLimitedError at once (0: no bound). The proxy's --wait-for-key.
	MaxWait time.Duration
	// OnKey, when set, is called after each successful answer with the
	// 1-based index of the pool key that answered (0 for the login), the
	// pool size and whether the request had to rotate.
	OnKey func(i, n int, rotated bool)

	mu      sync.Mutex
	last    report
	version string // the newest version learnt by this Transport or read from Learned

	learnedMod  time.Time       // Learned's modification time when last read
	learnedSize int64           // and its size
	versioned   *stream.Service // Service claiming version, built once
}

type report struct {
	i, n    int
	rotated bool
}

// Current returns the key of the last successful answer: its 1-based index,
// the pool size and whether that request rotated. i is 0 before any answer
// and for answers sent with the login.
func (t *Transport) Current() (i, n int, rotated bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last.i, t.last.n, t.last.rotated
}

// KeyLabel is the Indicator of Current: "🔑 2/3", "🔑 2/3 (rotated)", or ""
// before any answer and for the login.
func (t *Transport) KeyLabel() string {
	return Indicator(t.Current())
}

// attempt is the per-request bookkeeping.
type attempt struct {
	tried     map[string]bool // fingerprints sent (or refused) in this request
	refreshed map[string]bool // refresh attempted in this request: true = this token is the renewed one
	prefer    string          // fingerprint to try first (a freshly refreshed key)
	rotated   bool
	lastErr   error
	// refused holds the pool indexes the API refused (401) in this request,
	// and marks what this request marked because of those refusals, so that
	// an upstream that refuses every key can be told from a dead key.
	refused map[int]bool
	marks   []mark
	// shapeRefusals counts header-less 429s (ClassShape) in this request;
	// shapeResp is the first, returned when no other key can be tried.
	shapeRefusals int
	shapeResp     *http.Response
	// pin is the request's Pin (nil: none); pinned the fingerprint it
	// started on because of it, whose answer leaves the active key alone.
	pin    *Pin
	pinned string
	// versionRetried is set once the request was re-sent with a raised
	// Claude Code version; it is never raised twice in one request.
	versionRetried bool
}

// mark is a state flag a request set on a key because the API refused it.
type mark struct {
	tok     string
	revoked bool // else needs-reauth
}

// RoundTrip sends req with the credential of the Source; see Transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := replayable(req)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	for round := 0; ; round++ {
		resp, err := t.roundTrip(ctx, req)
		var al *AllLimitedError
		if !t.Wait || round >= maxWaitRounds || !errors.As(err, &al) ||
			t.MaxWait > 0 && al.FreeAt.Sub(t.Source.now()) > t.MaxWait {
			return resp, err
		}
		if err := t.wait(ctx, al); err != nil {
			return nil, err
		}
	}
}

// replayable returns req with a GetBody that replays its body, reading and
// closing the original body once when req has no GetBody.
func replayable(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if req.GetBody != nil {
		_ = req.Body.Close() // every attempt reads through GetBody
		return req, nil
	}
	data, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	r := req.Clone(req.Context())
	r.ContentLength = int64(len(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	r.Body, _ = r.GetBody()
	return r, nil
}

func (t *Transport) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	mode, p, _, err := t.Source.Files()
	switch {
	case err != nil:
		return nil, err
	case mode == ModeLogin:
		return t.loginRoundTrip(ctx, req)
	case mode == ModeNone:
		return nil, pkce.ErrNotLoggedIn
	}
	a := &attempt{tried: map[string]bool{}, refreshed: map[string]bool{}, refused: map[int]bool{}, pin: pinFrom(ctx)}
	if fp := pinned(a.pin, p, t.Source.now()); fp != "" {
		a.prefer, a.pinned = fp, fp // the conversation's key, not moved by SwitchAt
	} else if i := t.Source.switchTo(p); i >= 0 {
		a.prefer, a.rotated = keystore.Fingerprint(p.Keys[i]), true
	}
	for {
		now := t.Source.now()
		i := choose(p, a.tried, a.prefer, now)
		if i < 0 && a.shapeResp != nil {
			return a.shapeResp, nil // the refusal stands; no key is to blame
		}
		if i < 0 {
			return nil, exhausted(p, now, a.lastErr)
		}
		a.prefer = ""
		tok, n := p.Keys[i], len(p.Keys)
		fp := keystore.Fingerprint(tok)
		a.tried[fp] = true
		if _, attempted := a.refreshed[fp]; !attempted && keystore.KindOf(tok) == keystore.KindOAuth &&
			keystore.ExpiredAt(p.State(i).Expires, now) {
			// Refresh an expired OAuth key before using it rather than
			// spending a request on a 401.
			if p, err = t.refreshExpired(ctx, tok, i, n, a); err != nil {
				return nil, err
			}
			continue
		}

		resp, err := t.sendVersioned(ctx, req, tok, a)
		if err != nil {
			return nil, err // a transport failure says nothing about the key
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			resp, serr := peek(resp)
			if serr == nil {
				t.succeed(ctx, p, tok, resp.Header, a)
				return resp, nil
			}
			// An overload or rate limit before any content: rotate.
			a.lastErr, a.rotated = serr, true
			if p, err = t.cool(ctx, tok, i, n, Classify(serr), http.Header{}, a); err != nil {
				return nil, err
			}
			continue
		}
		resp, apiErr := readError(resp)
		switch class := Classify(apiErr); {
		case class == ClassShape:
			// Not the key's fault: no cooldown. One other key may tell a
			// refused account from a refused shape; then report.
			if a.shapeRefusals++; a.shapeRefusals >= 2 || len(p.Keys) == 1 {
				t.logf("🔑 key %d/%d (%s) got a 429 with no rate-limit headers: %s", i+1, n, keystore.Mask(tok), Hint(apiErr))
				return resp, nil
			}
			a.lastErr, a.shapeResp = apiErr, resp
			t.logf("🔑 key %d/%d (%s) got a 429 with no rate-limit headers (no cooldown); trying one other key", i+1, n, keystore.Mask(tok))
		case class == ClassDisabled:
			a.lastErr, a.rotated = apiErr, true
			if p, err = t.disable(ctx, tok, i, n, a); err != nil {
				return nil, err
			}
		case class.Rotates():
			a.lastErr, a.rotated = apiErr, true
			if p, err = t.cool(ctx, tok, i, n, class, resp.Header, a); err != nil {
				return nil, err
			}
		case class == ClassAuth:
			a.lastErr = apiErr
			if a.refused[i] = true; len(a.refused) >= 2 {
				// Two different keys refused: the upstream (a wrong base
				// URL, a proxy, an outage) refuses every key. Touch no more
				// keys and take back what this request marked.
				return nil, t.refusesAll(ctx, req, len(a.refused), apiErr, a)
			}
			if p, err = t.authFailed(ctx, tok, i, n, apiErr, a); err != nil {
				return nil, err
			}
		default:
			return resp, nil // not the key's fault: the caller reports it
		}
	}
}

// loginRoundTrip sends req with auth.json's login. A refused token is
// refreshed once and the request retried; every other answer, a rate limit
// included, goes back to the caller (there is no other key to rotate to).
func (t *Transport) loginRoundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	c, err := t.Source.refresher().AuthToken(ctx, false)
	if err != nil {
		return nil, err
	}
	a := &attempt{}
	for refreshed := false; ; refreshed = true {
		resp, err := t.sendVersioned(ctx, req, c.Token(), a)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || refreshed || c.Type != "oauth" {
			if err == nil && resp.StatusCode < 300 {
				pinFrom(ctx).set("", 0, 0)
				t.report(0, 0, false)
			}
			return resp, err
		}
		resp, _ = readError(resp) // kept for the caller if the refusal stands
		old := c.Token()
		nc, err := t.Source.refresher().AuthToken(ctx, true)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil || nc.Token() == old:
			return resp, nil
		}
		c = nc
		t.logf("🔑 refreshed: the login's token was refused; retrying with its new token %s", keystore.Mask(c.Token()))
	}
}

func (t *Transport) send(ctx context.Context, req *http.Request, tok string, svc *stream.Service) (*http.Response, error) {
	r := req.Clone(ctx)
	if err := svc.Prepare(r, tok); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// report records the key of a successful answer (i 1-based, 0 = login).
func (t *Transport) report(i, n int, rotated bool) {
	t.mu.Lock()
	t.last = report{i: i, n: n, rotated: rotated}
	t.mu.Unlock()
	if t.OnKey != nil {
		t.OnKey(i, n, rotated)
	}
}

// wait sleeps until al.FreeAt with progress on Log.
func (t *Transport) wait(ctx context.Context, al *AllLimitedError) error {
	t.logf("⏳ %v; waiting", al)
	for {
		left := al.FreeAt.Sub(t.Source.now())
		if left <= 0 {
			return nil
		}
		if err := t.sleep(ctx, min(left, time.Minute)); err != nil {
			return err
		}
		if left > time.Minute {
			t.logf("⏳ %s left", when.Duration(left-time.Minute))
		}
	}
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	return when.Sleep(ctx, d)
}

func (t *Transport) logf(format string, a ...any) {
	if t.Log != nil {
		fmt.Fprintf(t.Log, format+"\n", a...)
	}
}

// short is the status and type of an API error, else its text.
func short(err error) string {
	var ae *stream.APIError
	if errors.As(err, &ae) {
		if ae.Type != "" {
			return fmt.Sprintf("HTTP %d %s", ae.Status, ae.Type)
		}
		return fmt.Sprintf("HTTP %d", ae.Status)
	}
	return err.Error()
}
