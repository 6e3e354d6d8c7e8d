package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// Factory wires the dependencies every command needs. It is built once in
// main (or by a test) and handed to each command constructor; commands ask it
// for what they need when they run, so flags parsed by the app are honoured.
type Factory struct {
	IO *IOStreams // the process's streams (buffers in tests)

	// Getenv reads the environment (a map in tests).
	Getenv func(string) string

	// Now is the clock (fixed in tests).
	Now func() time.Time

	// HTTPClient is the client for every outgoing request; tests point it
	// at httptest servers or the emulator. nil: built on first use from the
	// timeout (httpClient).
	HTTPClient *http.Client

	// Global flag values, filled by the app's Before hook.
	Dir         string // agent dir as given by --dir / PI_CODING_AGENT_DIR ("" = default)
	KeyringMode string // auto | on | off
	NoColor     bool
	TimeoutFlag string // --timeout ("" = PIAUTH_TIMEOUT or the default)

	store *keystore.Store // opened lazily by Store()

	warned  map[string]bool // warnOnce keys already shown
	service *stream.Service // built once by Service()
}

// newSystemFactory builds the Factory for a real process.
func newSystemFactory() *Factory {
	return &Factory{
		IO:     systemIO(),
		Getenv: os.Getenv,
		Now:    time.Now,
	}
}

// warnOnce prints a warning line on stderr once per process for key.
func (f *Factory) warnOnce(key, format string, a ...any) {
	if f.warned[key] {
		return
	}
	if f.warned == nil {
		f.warned = map[string]bool{}
	}
	f.warned[key] = true
	f.warnf(format, a...)
}

// warnf prints a warning line on stderr.
func (f *Factory) warnf(format string, a ...any) {
	fmt.Fprintf(f.IO.ErrOut, "piauth: warning: "+format+"\n", a...)
}
