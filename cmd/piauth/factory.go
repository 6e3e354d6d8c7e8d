package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/piauth/piauth/pkg/keystore"
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
	// at httptest servers or the emulator.
	HTTPClient *http.Client

	// Global flag values, filled by the app's Before hook.
	Dir         string // agent dir as given by --dir / PI_CODING_AGENT_DIR ("" = default)
	KeyringMode string // auto | on | off
	NoColor     bool

	store *keystore.Store // opened lazily by Store()
}

// newSystemFactory builds the Factory for a real process.
func newSystemFactory() *Factory {
	return &Factory{
		IO:         systemIO(),
		Getenv:     os.Getenv,
		Now:        time.Now,
		HTTPClient: &http.Client{},
	}
}

// newTestFactory builds a Factory for in-process command tests: streams are
// buffers, the environment is env only.
func newTestFactory(stdin string, env map[string]string) (*Factory, *IOBuffers) {
	ios, out, errOut := testIO(stdin)
	return &Factory{
		IO:         ios,
		Getenv:     func(k string) string { return env[k] },
		Now:        time.Now,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}, &IOBuffers{Out: out, Err: errOut}
}

// warnf prints a warning line on stderr.
func (f *Factory) warnf(format string, a ...any) {
	fmt.Fprintf(f.IO.ErrOut, "piauth: warning: "+format+"\n", a...)
}
