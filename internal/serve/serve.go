// Package serve runs piauth's local HTTP servers (the emulator and the proxy):
// loopback by default, the address printed first, and a graceful shutdown
// when the context ends.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Listen opens a TCP listener on addr, or on def when addr is empty. A bare
// ":PORT" binds loopback; only an explicit host listens elsewhere. An IPv4
// literal (0.0.0.0 included) binds IPv4 only.
func Listen(addr, def string) (net.Listener, error) {
	if addr == "" {
		addr = def
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	network := "tcp"
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		network = "tcp4"
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// IsLoopback reports whether addr ("host:port") binds only to loopback: an
// empty host, localhost, or a loopback IP.
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

// Options tune Run.
type Options struct {
	// Grace bounds how long shutdown waits for requests in flight.
	Grace time.Duration
	// Finish lets requests in flight (streams included) run to their end
	// within Grace; without it they are cancelled as shutdown starts.
	Finish bool
	// OnShutdown, when set, is called once as shutdown starts.
	OnShutdown func()
}

// Announce prints "listening on http://HOST:PORT" for ln on w: the first line
// of stdout, which scripts and tests read to find the server.
func Announce(w io.Writer, ln net.Listener) error {
	_, err := fmt.Fprintf(w, "listening on http://%s\n", ln.Addr())
	return err
}

// Run serves h on ln until ctx ends, then shuts down as opts say. Request
// contexts do not derive from ctx, so ending ctx alone does not cut a
// stream. It closes ln and returns nil after a clean shutdown.
func Run(ctx context.Context, ln net.Listener, h http.Handler, opts Options) error {
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if opts.OnShutdown != nil {
		opts.OnShutdown()
	}
	if !opts.Finish {
		cancelReqs()
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.Grace)
	defer cancel()
	shutErr := srv.Shutdown(shutCtx)
	if shutErr != nil {
		cancelReqs() // the grace period is over: end what is left
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if shutErr != nil {
		return fmt.Errorf("shutdown: %w", shutErr)
	}
	return nil
}
