package proxy

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Resource bounds. Every one is an Options field; these are the defaults.
const (
	// DefaultMaxInFlight caps the requests forwarded at once; one more gets
	// 529 overloaded_error with retry-after: 1 (SDKs and Claude Code retry it).
	// An open stream costs the proxy some tens of KB (proxy_kb_per_stream in
	// scripts/bench.sh), so 256 of them stay far below the body budget.
	DefaultMaxInFlight = 256
	// DefaultMaxBodyBytesInFlight caps the client request bytes held at
	// once by all requests together (bodies are kept whole so that rotation
	// can resend them); a request that would pass it gets 529 as well.
	DefaultMaxBodyBytesInFlight = 256 << 20
	// DefaultMaxEventBytes caps one upstream SSE event (and so any line of
	// it): beyond it the stream is cut with an `event: error` to the client.
	// Real events are a few KB; server tool results reach a few hundred KB.
	DefaultMaxEventBytes = 16 << 20
	// DefaultMaxConns caps the client connections open at once (idle
	// keep-alive ones included); more wait in the listen backlog.
	DefaultMaxConns = 512
	// maxMessageBody caps a non-streamed upstream answer (502 beyond).
	maxMessageBody = 32 << 20
	// budgetStep is how much of the body budget a request of unknown length
	// takes at a time.
	budgetStep = 1 << 20
)

// ErrEventTooLarge is the error of an upstream event stream with an event
// over the limit (see LimitEventStreams and Options.MaxEventBytes).
var ErrEventTooLarge = errors.New("upstream SSE event too large")

// errBodyBudget means the body budget (Options.MaxBodyBytesInFlight) is spent.
var errBodyBudget = errors.New("request body budget in use")

// eventLimitReader passes an SSE byte stream through, failing with
// ErrEventTooLarge (for good) once more than max bytes arrive without an
// event boundary (a blank line). LF, CRLF and CR line ends count, as in the
// SSE spec. It inspects bytes in place: no copy, no buffer.
type eventLimitReader struct {
	r       io.Reader
	max     int
	event   int  // bytes since the last blank line
	lineLen int  // bytes in the current line
	prevCR  bool // the last byte was a CR (a following LF is the same line end)
	err     error
}

func (e *eventLimitReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	for i, c := range p[:n] {
		switch {
		case c == '\n' && e.prevCR:
			e.prevCR = false
			continue
		case c == '\n' || c == '\r':
			e.prevCR = c == '\r'
			if e.lineLen == 0 {
				e.event = 0 // blank line: the event ends
				continue
			}
			e.lineLen = 0
		default:
			e.prevCR = false
			e.lineLen++
		}
		if e.event++; e.event > e.max {
			e.err = fmt.Errorf("%w (over %d bytes without an event boundary)", ErrEventTooLarge, e.max)
			return i, e.err
		}
	}
	return n, err
}

// Close closes the underlying reader when it is an io.Closer.
func (e *eventLimitReader) Close() error {
	if c, ok := e.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// LimitEventStreams wraps base (nil: http.DefaultTransport) so that every
// text/event-stream answer fails with ErrEventTooLarge past an event of max
// bytes (DefaultMaxEventBytes when 0). Put it under a transport that reads
// streams itself (rotate.Transport peeks at a stream's start to rotate on an
// early error) so that no layer buffers an unbounded event.
func LimitEventStreams(base http.RoundTripper, maxEvent int) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEventBytes
	}
	return limitTransport{base: base, max: maxEvent}
}

type limitTransport struct {
	base http.RoundTripper
	max  int
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && isEventStream(resp.Header.Get("Content-Type")) {
		resp.Body = &eventLimitReader{r: resp.Body, max: t.max}
	}
	return resp, err
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// budgetReader reads a request body while holding its size in the shared
// body budget; release gives it back.
type budgetReader struct {
	r    io.Reader
	sem  *semaphore.Weighted
	held int64
	read int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	for b.read > b.held {
		if !b.sem.TryAcquire(budgetStep) {
			return n, errBodyBudget
		}
		b.held += budgetStep
	}
	return n, err
}

func (b *budgetReader) release() {
	if b.held > 0 {
		b.sem.Release(b.held)
		b.held = 0
	}
}

// acquire takes a slot for one forwarded request; false means the proxy is
// at Options.MaxInFlight.
func (p *Proxy) acquire() bool {
	select {
	case p.inFlight <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *Proxy) releaseSlot() { <-p.inFlight }

// busy answers 529 overloaded_error in Anthropic's shape: the proxy is at
// one of its bounds, and the client should retry shortly.
func (p *Proxy) busy(w http.ResponseWriter, rec *record, what string) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("X-Should-Retry", "true")
	p.fail(w, rec, statusOverloaded, "overloaded_error", "piauth proxy: "+what+"; retry shortly")
}

// statusOverloaded is Anthropic's 529 Overloaded.
const statusOverloaded = 529

// limitListener caps the connections open at once: Accept waits for a
// slot, which a connection frees when it closes.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, free: func() { <-l.slots }}, nil
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// mib renders a byte count for messages ("8 MiB").
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
