package main

import (
	"errors"

	"github.com/piauth/piauth/internal/service"
	"github.com/piauth/piauth/pkg/rotate"
)

// packageExitCode maps the errors of piauth's packages to exit codes:
// rotate.NeedsLogin (the one "log in first" predicate) → 3, every key
// rate-limited → 4, the proxy service not running (service.ErrNotRunning)
// → 3.
func packageExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, rotate.ErrAllKeysLimited):
		return exitAllLimited, true
	case rotate.NeedsLogin(err):
		return exitNoKey, true
	case errors.Is(err, service.ErrNotRunning):
		return exitNotRunning, true
	}
	return 0, false
}
