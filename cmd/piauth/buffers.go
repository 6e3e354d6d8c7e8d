package main

import "bytes"

// IOBuffers are the captured stdout and stderr of a test run.
type IOBuffers struct{ Out, Err *bytes.Buffer }
