package main

import (
	"errors"

	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
)

// packageExitCode maps the sentinel errors of piauth's packages to exit codes.
func packageExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, pkce.ErrNotLoggedIn),
		errors.Is(err, pkce.ErrNeedsLogin),
		errors.Is(err, pkce.ErrCannotRefresh),
		errors.Is(err, rotate.ErrNoUsableKey):
		return exitNoKey, true
	case errors.Is(err, rotate.ErrAllKeysLimited):
		return exitAllLimited, true
	}
	return 0, false
}
