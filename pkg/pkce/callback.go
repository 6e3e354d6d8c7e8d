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

// CallbackServer receives the OAuth redirect on 127.0.0.1. It accepts exactly one
// successful callback (or provider error); requests with a wrong or missing state are
// answered 400 and the server keeps waiting.
type CallbackServer struct {
	ln        net.Listener
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

// ListenCallback starts the callback server on 127.0.0.1:port (0 picks a free port). It
// returns an error wrapping ErrPortBusy (and the syscall error) when the port is taken.
func ListenCallback(ctx context.Context, port int, wantState string) (*CallbackServer, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s: %w", ErrPortBusy, addr, err)
		}
		return nil, fmt.Errorf("listen for OAuth callback: %w", err)
	}
	s := &CallbackServer{ln: ln, wantState: wantState, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10, // a huge query gets 431, never reaches the handler
	}
	go func() { _ = s.srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	return s, nil
}

// Addr returns the listener's address (always on 127.0.0.1).
func (s *CallbackServer) Addr() net.Addr { return s.ln.Addr() }

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
		// A provider error ends the login unless it carries a state that is not ours.
		if state != "" && !stateEqual(state, s.wantState) {
			s.badRequest(w, "The state parameter does not match this login.")
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
