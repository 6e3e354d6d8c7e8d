package main

import (
	"bytes"
	"net/http"
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
		Getenv:     func(k string) string { return env[k] },
		Now:        time.Now,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}, &IOBuffers{Out: out, Err: errOut}
}

// testIO returns streams backed by buffers; stdin reads from in.
func testIO(in string) (ios *IOStreams, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: bytes.NewBufferString(in), Out: stdout, ErrOut: stderr}, stdout, stderr
}
