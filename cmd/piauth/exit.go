package main

import (
	"context"
	"errors"
	"fmt"
)

// Exit codes, documented in `piauth --help` and the README.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNoKey       = 3 // not logged in / no usable key
	exitNotRunning  = 3 // proxy status: the service is not installed or not running
	exitAllLimited  = 4 // every key is rate-limited
	exitTruncated   = 5 // chat's answer was cut at max_tokens (or the context window)
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    success
   1    error
   2    usage error (bad flag, argument or empty prompt)
   3    not logged in, or no usable key; proxy status: the service is not running
   4    every key in the pool is rate-limited
   5    chat: the answer was cut at max_tokens (--allow-truncated: 0)
   130  interrupted (Ctrl-C)`

// usageError marks a mistake in how piauth was called (exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit 2).
func usagef(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// truncatedError is a one-shot chat answer cut at max_tokens or by the
// context window (exit 5); the answer was printed and stored.
type truncatedError struct{ msg string }

func (e *truncatedError) Error() string { return e.msg }

// silentError carries the cause of a non-zero exit without printing it: the
// command has already said it (status's report).
type silentError struct{ err error }

func (e *silentError) Error() string { return "" }
func (e *silentError) Unwrap() error { return e.err }

// exitCode maps an error to the process exit code. This is the only place
// errors become exit codes.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, new(*truncatedError)):
		return exitTruncated
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	if code, ok := packageExitCode(err); ok {
		return code
	}
	return exitError
}
