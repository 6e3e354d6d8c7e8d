package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/stream"
)

// maxWaitRounds bounds how often a Wait transport sleeps for a cooldown
// within one request.
const maxWaitRounds = 3

// maxErrorBody caps how much of an error answer is read to classify it.
const maxErrorBody = 1 << 20

// Refresher refreshes a pooled OAuth key; *pkce.Refresher implements it.
// PoolToken returns the (new) access token of the pooled key whose
// fingerprint is fp, replacing it in the pool.
type Refresher interface {
	PoolToken(ctx context.Context, fp string, force bool) (string, error)
}

// Transport is an http.RoundTripper that sends each Messages request with a
// key of the pool, rotating to the next usable key at once on a rate limit,
// an overload, or a refused credential. It is safe for concurrent use.
//
// Per request it tries each key at most once (plus one retry after a
// successful refresh) and never sleeps, except with Wait when every key is
// cooling down. Key state (cooldowns, unified status, needs-reauth, the active
// key) is persisted through Store.UpdatePool, so every process shares it.
type Transport struct {
	Base      http.RoundTripper // nil means http.DefaultTransport
	Store     *keystore.Store
	Refresher Refresher // nil: a refused OAuth key is marked needs-reauth at once
	// Log receives one line per rotation, eviction or wait (masked keys).
	Log io.Writer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Sleep waits d or until ctx is done (a timer when nil).
	Sleep func(ctx context.Context, d time.Duration) error
	// Wait makes the transport sleep until the first cooldown ends when every
	// key is cooling down, instead of failing with *AllLimitedError.
	Wait bool
	// OnKey, when set, is called after each successful answer with the
	// 1-based index of the key that answered, the pool size and whether the
	// request had to rotate.
	OnKey func(i, n int, rotated bool)

	mu   sync.Mutex
	last report
}

type report struct {
	i, n    int
	rotated bool
}

// Current returns the key of the last successful answer: its 1-based index,
// the pool size and whether that request rotated. i is 0 before any answer.
func (t *Transport) Current() (i, n int, rotated bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last.i, t.last.n, t.last.rotated
}

// KeyLabel renders Current for the status indicator: "2/3", "2/3 (rotated)",
// or "" before any answer.
func (t *Transport) KeyLabel() string {
	i, n, rotated := t.Current()
	switch {
	case i == 0:
		return ""
	case rotated:
		return fmt.Sprintf("%d/%d (rotated)", i, n)
	}
	return fmt.Sprintf("%d/%d", i, n)
}

// attempt is the per-request bookkeeping.
type attempt struct {
	tried     map[string]bool // fingerprints sent (or refused) in this request
	refreshed map[string]bool // refresh attempted in this request: true = this token is the renewed one
	prefer    string          // fingerprint to try first (a freshly refreshed key)
	rotated   bool
	lastErr   error
}

// RoundTrip sends req with the best usable key; see Transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	req, err := replayable(req)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	for round := 0; ; round++ {
		resp, err := t.roundTrip(ctx, req)
		var al *AllLimitedError
		if !t.Wait || round >= maxWaitRounds || !errors.As(err, &al) {
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
	p, err := t.Store.Pool()
	if err != nil {
		return nil, fmt.Errorf("read key pool: %w", err)
	}
	a := &attempt{tried: map[string]bool{}, refreshed: map[string]bool{}}
	for {
		now := t.now()
		i := choose(p, a.tried, a.prefer, now)
		if i < 0 {
			return nil, exhausted(p, now, a.lastErr)
		}
		a.prefer = ""
		tok, n := p.Keys[i], len(p.Keys)
		fp := keystore.Fingerprint(tok)
		a.tried[fp] = true
		if _, attempted := a.refreshed[fp]; !attempted && t.expired(p, i, now) {
			// Refresh an expired OAuth key before using it rather than
			// spending a request on a 401.
			if p, err = t.refreshExpired(ctx, tok, i, n, a); err != nil {
				return nil, err
			}
			continue
		}

		resp, err := t.send(ctx, req, tok)
		if err != nil {
			return nil, err // a transport failure says nothing about the key
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			resp, serr := peek(resp)
			if serr == nil {
				t.succeed(ctx, p, tok, resp.Header, a.rotated)
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
		case class.Rotates():
			a.lastErr, a.rotated = apiErr, true
			if p, err = t.cool(ctx, tok, i, n, class, resp.Header, a); err != nil {
				return nil, err
			}
		case class == ClassAuth:
			a.lastErr = apiErr
			if p, err = t.authFailed(ctx, tok, i, n, apiErr, a); err != nil {
				return nil, err
			}
		default:
			return resp, nil // not the key's fault: the caller reports it
		}
	}
}

func (t *Transport) send(ctx context.Context, req *http.Request, tok string) (*http.Response, error) {
	r := req.Clone(ctx)
	if err := stream.Prepare(r, tok); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// choose returns the index of the key to try next, or -1: the preferred key,
// else the active key while it is ready (keeps the prompt cache warm), else
// the ready key with the lowest reported utilisation (ties: the first after
// the active one). Ready = not tried in this request, not cooling down, not
// waiting for a new login.
func choose(p *keystore.Pool, tried map[string]bool, prefer string, now time.Time) int {
	n := len(p.Keys)
	ready := func(i int) bool {
		fp := keystore.Fingerprint(p.Keys[i])
		st := p.States[fp]
		return !tried[fp] && (st == nil || (!st.NeedsReauth && !st.CooldownUntil.After(now)))
	}
	util := func(i int) float64 {
		if st := p.States[keystore.Fingerprint(p.Keys[i])]; st != nil {
			return st.Utilization
		}
		return 0
	}
	if prefer != "" {
		if i := p.Find(prefer); i >= 0 && ready(i) {
			return i
		}
	}
	active := p.Active
	if active < 0 || active >= n {
		active = 0
	}
	if n > 0 && ready(active) {
		return active
	}
	best := -1
	for k := 1; k <= n; k++ {
		if i := (active + k) % n; ready(i) && (best < 0 || util(i) < util(best)) {
			best = i
		}
	}
	return best
}

// exhausted builds the error for a request that ran out of keys.
func exhausted(p *keystore.Pool, now time.Time, last error) error {
	var free time.Time
	cooling := 0
	for i := range p.Keys {
		st := p.States[keystore.Fingerprint(p.Keys[i])]
		if st == nil || st.NeedsReauth || !st.CooldownUntil.After(now) {
			continue
		}
		cooling++
		if free.IsZero() || st.CooldownUntil.Before(free) {
			free = st.CooldownUntil
		}
	}
	switch {
	case cooling > 0:
		return &AllLimitedError{N: cooling, FreeAt: free, At: now}
	case len(p.Keys) == 0:
		return fmt.Errorf("%w: the key pool is empty", ErrNoUsableKey)
	case last != nil:
		return fmt.Errorf("%w: %w", ErrNoUsableKey, last)
	}
	return fmt.Errorf("%w: every pooled key needs a new login (piauth login --add-to-pool)", ErrNoUsableKey)
}

// cool records that key tok (index i of n) failed with class, moves Active to
// the next usable key and says so on Log. It returns the updated pool.
func (t *Transport) cool(ctx context.Context, tok string, i, n int, class Class, h http.Header, a *attempt) (*keystore.Pool, error) {
	now := t.now()
	until := Cooldown(h, class, now)
	reason, what := "rate_limit", "rate-limited"
	if class == ClassOverloaded {
		reason, what = "overloaded", "overloaded"
	}
	next := -1
	p, err := t.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
		if j := p.Find(tok); j >= 0 {
			st := p.State(j)
			if until.After(st.CooldownUntil) {
				st.CooldownUntil = until
			}
			until = st.CooldownUntil
			st.CooldownReason = reason
			if u, ok := ParseUnified(h); ok {
				st.UnifiedStatus, st.Utilization = u.Status, u.Utilization
			}
		}
		if next = choose(p, a.tried, "", now); next >= 0 {
			p.Active = next
		}
		p.Rotated = true
		n = len(p.Keys)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record cooldown of key %d/%d: %w", i+1, n, err)
	}
	then := "no other key is ready"
	if next >= 0 {
		then = fmt.Sprintf("trying key %d/%d", next+1, n)
	}
	t.logf("🔑 %s: key %d/%d (%s) cooling until %s (in %s); %s",
		what, i+1, n, keystore.Mask(tok), clock(until, now, "15:04"), FormatDuration(until.Sub(now)), then)
	return p, nil
}

// expired reports whether key i is an OAuth key past the expiry its state
// records, with a Refresher to renew it.
func (t *Transport) expired(p *keystore.Pool, i int, now time.Time) bool {
	st := p.States[keystore.Fingerprint(p.Keys[i])]
	return t.Refresher != nil && st != nil && st.Expires != 0 && now.UnixMilli() >= st.Expires &&
		keystore.KindOf(p.Keys[i]) == keystore.KindOAuth
}

// refreshExpired renews expired key tok and makes it the next key tried; a
// key that cannot be renewed is marked needs-reauth, and after a passing
// failure the old token is still tried (its recorded expiry may be wrong).
func (t *Transport) refreshExpired(ctx context.Context, tok string, i, n int, a *attempt) (*keystore.Pool, error) {
	fp := keystore.Fingerprint(tok)
	newTok, err := t.Refresher.PoolToken(ctx, fp, false)
	switch {
	case err == nil && newTok != tok:
		nfp := keystore.Fingerprint(newTok)
		a.refreshed[nfp], a.prefer = true, nfp
		return t.pool()
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil && permanent(err):
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
		p, err := t.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
			if j := p.Find(tok); j >= 0 {
				p.Remove(j)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("evict %s: %w", label, err)
		}
		t.logf("🔑 evicted: %s was refused (%s); removed from the pool, its file and the keyring", label, short(cause))
		return p, nil
	}
	renewed, attempted := a.refreshed[fp]
	if attempted && !renewed {
		t.logf("🔑 %s was refused and could not be refreshed now; trying the next key", label)
		return t.pool()
	}
	if t.Refresher != nil && !attempted {
		newTok, err := t.Refresher.PoolToken(ctx, fp, true)
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
		case !permanent(err):
			t.logf("🔑 %s was refused and could not be refreshed now (%v); trying the next key", label, err)
			return t.pool()
		}
		return t.markReauth(ctx, tok, i, n, "was refused ("+short(cause)+") and its refresh failed: "+err.Error())
	}
	return t.markReauth(ctx, tok, i, n, "was refused ("+short(cause)+")")
}

// markReauth marks key tok (index i of n) as needing a new login; why ends
// "key i/n (masked) …" on Log.
func (t *Transport) markReauth(ctx context.Context, tok string, i, n int, why string) (*keystore.Pool, error) {
	label := fmt.Sprintf("key %d/%d (%s)", i+1, n, keystore.Mask(tok))
	p, err := t.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
		if j := p.Find(tok); j >= 0 {
			p.State(j).NeedsReauth = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark %s needs-reauth: %w", label, err)
	}
	t.logf("🔑 needs re-login: %s %s; `piauth login --add-to-pool` or `piauth key remove` fixes it", label, why)
	return p, nil
}

// permanent reports whether a refresh failure means the key needs a new
// login, as opposed to a passing failure (network, lock timeout).
func permanent(err error) bool {
	return errors.Is(err, pkce.ErrInvalidGrant) || errors.Is(err, pkce.ErrNeedsLogin) ||
		errors.Is(err, pkce.ErrCannotRefresh)
}

func (t *Transport) pool() (*keystore.Pool, error) {
	p, err := t.Store.Pool()
	if err != nil {
		return nil, fmt.Errorf("read key pool: %w", err)
	}
	return p, nil
}

// succeed records a healthy answer of key tok: unified status, the active
// key and the rotated mark, writing only when something changed. A failure to
// record is reported on Log; the answer is still returned.
func (t *Transport) succeed(ctx context.Context, p *keystore.Pool, tok string, h http.Header, rotated bool) {
	now := t.now()
	fp := keystore.Fingerprint(tok)
	i := p.Find(tok)
	u, hasU := ParseUnified(h)
	st := p.States[fp]
	if st == nil {
		st = &keystore.KeyState{}
	}
	changed := i != p.Active || p.Rotated != rotated || !st.CooldownUntil.IsZero() ||
		(hasU && (st.UnifiedStatus != u.Status || math.Abs(st.Utilization-u.Utilization) >= 0.01))
	var until time.Time
	if hasU && u.Status == "rejected" {
		// Answered, but the next request would be refused: skip the key
		// until its window resets.
		until, changed = Cooldown(h, ClassRotate, now), true
	}
	if changed {
		np, err := t.Store.UpdatePool(ctx, func(p *keystore.Pool) error {
			j := p.Find(tok)
			if j < 0 {
				return nil
			}
			p.Active, p.Rotated = j, rotated
			s := p.State(j)
			if !s.CooldownUntil.After(now) {
				s.CooldownUntil, s.CooldownReason = time.Time{}, ""
			}
			if hasU {
				s.UnifiedStatus, s.Utilization = u.Status, u.Utilization
			}
			if !until.IsZero() {
				s.CooldownUntil, s.CooldownReason = until, "rate_limit"
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
		t.mu.Lock()
		t.last = report{i: i + 1, n: len(p.Keys), rotated: rotated}
		t.mu.Unlock()
		if t.OnKey != nil {
			t.OnKey(i+1, len(p.Keys), rotated)
		}
	}
}

// wait sleeps until al.FreeAt with progress on Log.
func (t *Transport) wait(ctx context.Context, al *AllLimitedError) error {
	t.logf("⏳ %v; waiting", al)
	for {
		left := al.FreeAt.Sub(t.now())
		if left <= 0 {
			return nil
		}
		if err := t.sleep(ctx, min(left, time.Minute)); err != nil {
			return err
		}
		if left > time.Minute {
			t.logf("⏳ %s left", FormatDuration(left-time.Minute))
		}
	}
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.Sleep != nil {
		return t.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

// readError reads an error answer (at most 1 MiB), returning a response whose
// body replays what was read and the *stream.APIError it carries.
func readError(resp *http.Response) (*http.Response, error) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	probe := *resp
	probe.Body = io.NopCloser(bytes.NewReader(data))
	err := stream.CheckResponse(&probe)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, err
}

// peek reads a streaming answer until its first content. It returns the
// error of an `event: error` that rotates (the body is then closed), else a
// response whose body replays every byte read followed by the rest.
func peek(resp *http.Response) (*http.Response, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return resp, nil
	}
	var seen bytes.Buffer
	d := stream.NewDecoder(io.TeeReader(resp.Body, &seen))
peeking:
	for d.Next() {
		ev := d.Event()
		switch ev.Name {
		case "error":
			if se := parseStreamError(ev.Data); Classify(se).Rotates() {
				_ = resp.Body.Close()
				return nil, se
			}
			break peeking
		case "content_block_delta", "message_delta", "message_stop":
			break peeking
		case "content_block_start":
			if hasContent(ev.Data) {
				break peeking
			}
		}
	}
	resp.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(seen.Bytes()), resp.Body), body: resp.Body}
	return resp, nil
}

type replayBody struct {
	io.Reader
	body io.Closer
}

func (r *replayBody) Close() error { return r.body.Close() }

func parseStreamError(data []byte) *stream.StreamError {
	var w struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &w); err != nil || w.Error.Type == "" {
		return &stream.StreamError{Type: "unknown_error", Message: string(data)}
	}
	return &stream.StreamError{Type: w.Error.Type, Message: w.Error.Message}
}

// hasContent reports whether a content_block_start event already carries
// content: anything but an empty text or thinking block.
func hasContent(data []byte) bool {
	var ev struct {
		Block struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			Thinking string `json:"thinking"`
		} `json:"content_block"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return true
	}
	switch ev.Block.Type {
	case "text":
		return ev.Block.Text != ""
	case "thinking":
		return ev.Block.Thinking != ""
	}
	return true
}

// Next returns the index of the key a request would use now: the active key
// while it is usable, else the ready key with the lowest reported
// utilisation. With no usable key it returns an *AllLimitedError, or an error
// wrapping ErrNoUsableKey. Commands that hand out one key (token) use it.
func Next(p *keystore.Pool, now time.Time) (int, error) {
	if i := choose(p, nil, "", now); i >= 0 {
		return i, nil
	}
	return -1, exhausted(p, now, nil)
}
