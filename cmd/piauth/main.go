// Command piauth manages Claude Pro/Max OAuth credentials, a pool of keys with
// rotation, and talks to the Messages API, sharing pi's files.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, newSystemFactory(), os.Args)
	stop()
	os.Exit(code)
}
