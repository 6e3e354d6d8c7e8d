package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/piauth/piauth/internal/serve"
)

// Listen opens a TCP listener on addr ("" → DefaultAddr). A bare ":PORT" is
// bound to loopback; only an explicit host listens elsewhere.
func Listen(addr string) (net.Listener, error) {
	ln, err := serve.Listen(addr, DefaultAddr)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return ln, nil
}

// IsLoopback reports whether addr ("host:port") binds only to loopback:
// an empty host, localhost, or a loopback IP.
func IsLoopback(addr string) bool { return serve.IsLoopback(addr) }

// Serve listens on addr, prints "listening on http://HOST:PORT" as the first
// line of stdout and serves until ctx is cancelled (see ServeListener).
func (p *Proxy) Serve(ctx context.Context, addr string, stdout io.Writer) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	if err := serve.Announce(stdout, ln); err != nil {
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
//
// It also serves the listen host as a Host name (any IP literal for a
// wildcard address) and caps open connections at Options.MaxConns; call it
// before the Proxy serves requests elsewhere.
func (p *Proxy) ServeListener(ctx context.Context, ln net.Listener) error {
	p.listen = "http://" + ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		if tcp.IP.IsUnspecified() {
			p.anyIPHost = true
			p.listen = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port)) // what a local client dials
		} else {
			p.hosts = append(p.hosts, hostName(tcp.IP.String()))
		}
	}
	err := serve.Run(ctx, newLimitListener(ln, p.opts.MaxConns), p, serve.Options{
		Grace:  p.opts.ShutdownTimeout,
		Finish: true,
		OnShutdown: func() {
			if p.opts.Log != nil {
				p.logMu.Lock()
				fmt.Fprintf(p.opts.Log, "piauth proxy: shutting down; finishing requests in flight (up to %s)\n", p.opts.ShutdownTimeout)
				p.logMu.Unlock()
			}
		},
	})
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}
