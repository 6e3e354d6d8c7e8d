package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Listen opens a TCP listener on addr ("" → DefaultAddr). A bare ":PORT" is
// bound to loopback; only an explicit host listens elsewhere.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("proxy address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	network := "tcp"
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		network = "tcp4" // 0.0.0.0 means IPv4 only, not every address
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	return ln, nil
}

// IsLoopback reports whether addr ("host:port") binds only to loopback:
// an empty host, localhost, or a loopback IP.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" || host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve listens on addr, prints "listening on http://HOST:PORT" as the first
// line of stdout and serves until ctx is cancelled (see ServeListener).
func (p *Proxy) Serve(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr()); err != nil {
		ln.Close()
		return fmt.Errorf("proxy: %w", err)
	}
	return p.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets requests in flight (streams included)
// finish for up to Options.ShutdownTimeout, and only then cuts what is left.
// Request contexts do not derive from ctx, so cancelling ctx does not cancel
// them. It closes ln and returns nil after a clean shutdown.
func (p *Proxy) ServeListener(ctx context.Context, ln net.Listener) error {
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("proxy serve: %w", err)
	case <-ctx.Done():
	}
	if p.opts.Log != nil {
		p.logMu.Lock()
		fmt.Fprintf(p.opts.Log, "piauth proxy: shutting down; finishing requests in flight (up to %s)\n", p.opts.ShutdownTimeout)
		p.logMu.Unlock()
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.ShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(shutCtx)
	if shutErr != nil {
		cancelReqs() // the grace period is over: end what is left
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("proxy serve: %w", err)
	}
	if shutErr != nil {
		return fmt.Errorf("proxy shutdown: %w", shutErr)
	}
	return nil
}
