package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/piauth/piauth/internal/secret"
)

// recoverPanic, deferred in run, turns a panic into exit 1 with the panic
// value and the stack on errOut, every token in them masked.
func recoverPanic(errOut io.Writer, code *int) {
	v := recover()
	if v == nil {
		return
	}
	fmt.Fprint(errOut, secret.MaskAll(fmt.Sprintf("piauth: internal error (please report it)\npanic: %v\n\n%s", v, debug.Stack())))
	*code = exitError
}
