package main

import (
	"errors"

	"github.com/piauth/piauth/pkg/rotate"
)

// packageExitCode maps the errors of piauth's packages to exit codes:
// rotate.NeedsLogin (the one "log in first" predicate) → 3, every key
// rate-limited → 4.
func packageExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, rotate.ErrAllKeysLimited):
		return exitAllLimited, true
	case rotate.NeedsLogin(err):
		return exitNoKey, true
	}
	return 0, false
}
