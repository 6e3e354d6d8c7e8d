package main

import (
	"bytes"
	"net/http"
	"os"
	"time"
)

// IOBuffers are the captured stdout and stderr of a test run.
type IOBuffers struct{ Out, Err *bytes.Buffer }

// newTestFactory builds a Factory for in-process command tests: streams are
// buffers, the environment is env only.
func newTestFactory(stdin string, env map[string]string) (*Factory, *IOBuffers) {
	ios, out, errOut := testIO(stdin)
	return &Factory{
		IO:         ios,
		Getenv:     testGetenv(env),
		Now:        time.Now,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}, &IOBuffers{Out: out, Err: errOut}
}

// testIO returns streams backed by buffers; stdin reads from in.
func testIO(in string) (ios *IOStreams, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: bytes.NewBufferString(in), Out: stdout, ErrOut: stderr}, stdout, stderr
}

// testGetenv is env as a Getenv, plus the test process's own session bus
// (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR) unless env sets them: keyring
// tests reach the throwaway Secret Service scripts/test.sh started, and the
// store's bus check sees the bus that is really there.
func testGetenv(env map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		switch k {
		case "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR":
			return os.Getenv(k)
		}
		return ""
	}
}
