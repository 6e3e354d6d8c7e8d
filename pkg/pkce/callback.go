package pkce

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrPortBusy means the callback port is taken; callers fall back to the paste flow.
var ErrPortBusy = errors.New("callback port is busy")

// AuthorizeError is an error answer of the authorization server (?error=… on the callback,
// or in a pasted callback URL). errors.Is(err, ErrAccessDenied) is true for it.
type AuthorizeError struct {
	Code        string // the provider's "error"
	Description string // the provider's "error_description"
}

func (e *AuthorizeError) Error() string {
	msg := fmt.Sprintf("authorization failed: %q", e.Code)
	if e.Description != "" {
		msg += fmt.Sprintf(" (%q)", e.Description)
	}
	return msg
}

// Unwrap returns ErrAccessDenied.
func (e *AuthorizeError) Unwrap() error { return ErrAccessDenied }

// CallbackServer receives the OAuth redirect on 127.0.0.1 (and ::1). It accepts exactly
// one successful callback (or provider error carrying our state); requests with a wrong
// or missing state are answered 400 and the server keeps waiting.
type CallbackServer struct {
	ln        net.Listener   // the IPv4 listener
	lns       []net.Listener // every listener: 127.0.0.1 and, when available, ::1
	srv       *http.Server
	wantState string

	once sync.Once
	done chan struct{} // closed when code or err is set
	code string
	err  error
}

// Page templates; html/template escapes every reflected value.
var (
	successPage = template.Must(template.New("ok").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>piauth: logged in</title></head>
<body><h1>Login complete</h1><p>You can close this window and return to the terminal.</p></body></html>
`))
	failurePage = template.Must(template.New("fail").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>piauth: login failed</title></head>
<body><h1>Login failed</h1><p>The authorization server answered: <code>{{.Code}}</code></p>
{{if .Description}}<p>{{.Description}}</p>{{end}}<p>Return to the terminal and try again.</p></body></html>
`))
	badRequestPage = template.Must(template.New("bad").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>piauth: bad request</title></head>
<body><h1>Bad request</h1><p>{{.}}</p><p>The login is still waiting for the right callback.</p></body></html>
`))
)

// ListenCallback starts the callback server on 127.0.0.1:port (0 picks a free port)
// and, when the host has an IPv6 loopback, on [::1] at the same port too: the redirect
// URI names "localhost", which a browser may resolve to either. Nothing else is ever
// bound. It returns an error wrapping ErrPortBusy (and the syscall error) when the
// port is taken on either address.
func ListenCallback(ctx context.Context, port int, wantState string) (*CallbackServer, error) {
	lns, err := listenLoopback(ctx, port)
	if err != nil {
		return nil, err
	}
	s := &CallbackServer{ln: lns[0], lns: lns, wantState: wantState, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10, // a huge query gets 431, never reaches the handler
	}
	for _, ln := range lns {
		go func() { _ = s.srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	}
	return s, nil
}

// listenLoopback binds 127.0.0.1:port and, if the host has ::1, [::1] on the same
// port. With port 0 it retries a few times when the IPv4 port is taken on ::1.
func listenLoopback(ctx context.Context, port int) ([]net.Listener, error) {
	var lc net.ListenConfig
	for try := 0; ; try++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln4, err := lc.Listen(ctx, "tcp4", addr)
		if err != nil {
			return nil, listenErr(addr, err)
		}
		p := ln4.Addr().(*net.TCPAddr).Port
		addr6 := net.JoinHostPort("::1", strconv.Itoa(p))
		ln6, err := lc.Listen(ctx, "tcp6", addr6)
		switch {
		case err == nil:
			return []net.Listener{ln4, ln6}, nil
		case !errors.Is(err, syscall.EADDRINUSE):
			// No IPv6 loopback here (EADDRNOTAVAIL, EAFNOSUPPORT…): IPv4 only.
			return []net.Listener{ln4}, nil
		case port == 0 && try < 5:
			_ = ln4.Close() // the free IPv4 port is taken on ::1: pick another
		default:
			_ = ln4.Close()
			return nil, listenErr(addr6, err)
		}
	}
}

func listenErr(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %s: %w", ErrPortBusy, addr, err)
	}
	return fmt.Errorf("listen for OAuth callback: %w", err)
}

// Addr returns the IPv4 listener's address (always 127.0.0.1).
func (s *CallbackServer) Addr() net.Addr { return s.ln.Addr() }

// Addrs returns every bound address: 127.0.0.1 and, when available, [::1], on the
// same port.
func (s *CallbackServer) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr()
	}
	return out
}

// RedirectURI returns http://localhost:PORT/callback for the bound port.
func (s *CallbackServer) RedirectURI() string {
	port := s.ln.Addr().(*net.TCPAddr).Port
	return "http://localhost:" + strconv.Itoa(port) + CallbackPath
}

// Wait blocks until the callback delivers a code or a provider error, or ctx ends
// (ErrTimeout when its deadline passed, else ctx.Err()). It may be called repeatedly.
func (s *CallbackServer) Wait(ctx context.Context) (string, error) {
	select {
	case <-s.done:
		return s.code, s.err
	case <-ctx.Done():
		return "", ctxErr(ctx)
	}
}

// Close shuts the server down, giving in-flight responses a moment to finish.
func (s *CallbackServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// finish records the outcome once; it reports whether this call was the first.
func (s *CallbackServer) finish(code string, err error) bool {
	first := false
	s.once.Do(func() {
		s.code, s.err, first = code, err, true
		close(s.done)
	})
	return first
}

func (s *CallbackServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != CallbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")

	q := r.URL.Query()
	state := q.Get("state")
	if e := q.Get("error"); e != "" {
		// A provider error ends the login only with our state: any web page can make the
		// browser load this URL (an <img>), so a bare ?error= must not abort the login.
		if state == "" || !stateEqual(state, s.wantState) {
			s.badRequest(w, "The error's state parameter does not match this login; ignored.")
			return
		}
		aerr := &AuthorizeError{Code: e, Description: q.Get("error_description")}
		if !s.finish("", aerr) {
			s.badRequest(w, "This login has already finished.")
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = failurePage.Execute(w, aerr)
		return
	}
	code := q.Get("code")
	if code == "" || state == "" {
		s.badRequest(w, "The callback is missing the code or state parameter.")
		return
	}
	if !stateEqual(state, s.wantState) {
		s.badRequest(w, "The state parameter does not match this login.")
		return
	}
	if !s.finish(code, nil) {
		s.badRequest(w, "This login has already finished.")
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = successPage.Execute(w, nil)
}

func (s *CallbackServer) badRequest(w http.ResponseWriter, msg string) {
	w.WriteHeader(http.StatusBadRequest)
	_ = badRequestPage.Execute(w, msg)
}

// ctxErr maps a finished context to ErrTimeout (deadline) or its own error.
func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
	return ctx.Err()
}
