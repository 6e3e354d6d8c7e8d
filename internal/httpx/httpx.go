// Package httpx builds piauth's outgoing HTTP clients. Every client it makes
// is bounded — time to connect, time to the first byte of the answer, and the
// longest silence inside a streamed answer — and never follows a redirect:
// piauth adds credentials inside its transports, so a followed redirect
// would hand a token to whatever host the redirect names.
package httpx

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/piauth/piauth/internal/when"
)

// ErrTimeout is matched (errors.Is) by *TimeoutError.
var ErrTimeout = errors.New("timed out")

// ErrRedirect is returned for an answer that redirects: it is never followed.
var ErrRedirect = errors.New("redirect refused: piauth never sends credentials to another address")

// Limits bound one client. A zero duration means no bound.
type Limits struct {
	Connect   time.Duration // TCP connect and TLS handshake
	FirstByte time.Duration // from the request sent to the answer's headers
	Idle      time.Duration // longest gap between two reads of the answer's body
	// SetBy names what chose the limits in messages ("PIAUTH_TIMEOUT",
	// "--timeout", "the default"), so a user knows what to change.
	SetBy string
}

// TimeoutError says which limit an exchange ran into, with the URL and what
// set the limit.
type TimeoutError struct {
	What  string // "no answer", "no data"
	URL   string
	Limit time.Duration
	SetBy string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s from %s within %s (limit set by %s)", e.What, e.URL, when.Duration(e.Limit), e.SetBy)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Timeout reports whether err is a timeout (also net.Error timeouts), so the
// message can carry the limit.
func (e *TimeoutError) Timeout() bool { return true }

// New returns a client with limits l that refuses redirects. Its transport is
// a clone of http.DefaultTransport with the connect and first-byte limits,
// wrapped so that timeouts name the URL and the limit, and so that a body
// read that stays silent for l.Idle fails.
func New(l Limits) *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if l.Connect > 0 {
		base.DialContext = (&net.Dialer{Timeout: l.Connect, KeepAlive: 30 * time.Second}).DialContext
		base.TLSHandshakeTimeout = l.Connect
	}
	base.ResponseHeaderTimeout = l.FirstByte
	return &http.Client{Transport: &Transport{Base: base, Limits: l}, CheckRedirect: NoRedirect}
}

// HTTPTransport is the *http.Transport under rt when rt is one of New's
// transports (or that transport itself), for a caller that tunes the
// connection pool; nil otherwise.
func HTTPTransport(rt http.RoundTripper) *http.Transport {
	if t, ok := rt.(*Transport); ok {
		rt = t.Base
	}
	t, _ := rt.(*http.Transport)
	return t
}

// NoRedirect is an http.Client CheckRedirect that refuses every redirect;
// the caller gets the redirect answer itself and an error wrapping
// ErrRedirect from Client.Do.
func NoRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w (to %s)", ErrRedirect, req.URL.Redacted())
}

// Transport applies Limits to Base: it names the URL and the limit in
// timeout errors and bounds the silence inside answer bodies.
type Transport struct {
	Base   http.RoundTripper
	Limits Limits
}

// RoundTrip sends req through Base.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && req.Context().Err() == nil {
			limit, what := t.Limits.FirstByte, "no answer"
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "dial" {
				limit, what = t.Limits.Connect, "no connection"
			}
			return nil, &TimeoutError{What: what, URL: req.URL.Redacted(), Limit: limit, SetBy: t.Limits.SetBy}
		}
		return nil, err
	}
	if t.Limits.Idle > 0 && resp.Body != nil {
		resp.Body = newIdleBody(resp.Body, t.Limits.Idle, &TimeoutError{What: "no data", URL: req.URL.Redacted(), Limit: t.Limits.Idle, SetBy: t.Limits.SetBy})
	}
	return resp, nil
}

// idleBody fails a read once the body has been silent for longer than idle:
// a timer, reset by every read that returns data, closes the body.
type idleBody struct {
	body  io.ReadCloser
	idle  time.Duration
	err   *TimeoutError
	timer *time.Timer

	mu      sync.Mutex
	expired bool
}

func newIdleBody(body io.ReadCloser, idle time.Duration, err *TimeoutError) *idleBody {
	b := &idleBody{body: body, idle: idle, err: err}
	b.timer = time.AfterFunc(idle, func() {
		b.mu.Lock()
		b.expired = true
		b.mu.Unlock()
		_ = body.Close() // unblocks a Read in progress
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.mu.Lock()
	expired := b.expired
	b.mu.Unlock()
	if expired {
		return n, b.err
	}
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.body.Close()
}
