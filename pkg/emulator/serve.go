package emulator

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/piauth/piauth/internal/serve"
)

// DefaultAddr is the listen address when none is given: loopback, any free port.
const DefaultAddr = "127.0.0.1:0"

// shutdownGrace bounds how long Serve waits for open requests on shutdown.
const shutdownGrace = 5 * time.Second

// Listen opens a TCP listener on addr ("" → DefaultAddr). A bare ":PORT" is
// bound to loopback; only an explicit host listens elsewhere.
func Listen(addr string) (net.Listener, error) {
	ln, err := serve.Listen(addr, DefaultAddr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
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
	if err := serve.Announce(stdout, ln); err != nil {
		ln.Close()
		return fmt.Errorf("emulator: %w", err)
	}
	return e.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is cancelled; it closes ln. Streams
// still open at shutdown are cut: an emulator has nothing to finish.
func (e *Emulator) ServeListener(ctx context.Context, ln net.Listener) error {
	if err := serve.Run(ctx, ln, e, serve.Options{Grace: shutdownGrace}); err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}
