package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// DefaultAddr is the listen address when none is given: loopback, any free port.
const DefaultAddr = "127.0.0.1:0"

// shutdownGrace bounds how long Serve waits for open requests on shutdown.
const shutdownGrace = 5 * time.Second

// Listen opens a TCP listener on addr ("" → DefaultAddr). A bare ":PORT" is
// bound to loopback; only an explicit host listens elsewhere.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("emulator listen: %w", err)
	}
	return ln, nil
}

// Serve listens on addr, prints "listening on http://HOST:PORT" as the first
// line of stdout and serves until ctx is cancelled, then shuts down
// gracefully (open streams are cancelled). It returns nil after a clean shutdown.
func (e *Emulator) Serve(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr()); err != nil {
		ln.Close()
		return fmt.Errorf("emulator: %w", err)
	}
	return e.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is cancelled; it closes ln.
func (e *Emulator) ServeListener(ctx context.Context, ln net.Listener) error {
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("emulator serve: %w", err)
	case <-ctx.Done():
	}
	cancelReqs() // end streams in flight
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("emulator shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("emulator serve: %w", err)
	}
	return nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
