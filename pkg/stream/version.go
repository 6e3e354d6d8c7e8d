package stream

import (
	"errors"
	"regexp"
	"strings"

	"golang.org/x/mod/semver"
)

// CodeVersionTooOld is the error.error_code of a 400 answered to a Claude
// Code version below the model's floor.
const CodeVersionTooOld = "claude_code_version_too_old"

// requiredVersionRE finds the floor in messages such as "Claude Code 2.1.75
// does not support this model; version 2.1.251 or newer is required".
var requiredVersionRE = regexp.MustCompile(`version v?(\d+(?:\.\d+){0,2}) or newer is required`)

// RequiredVersion reports whether err (or an error it wraps) is an *APIError
// saying our Claude Code version is too old: status 400 with error_code
// claude_code_version_too_old, or a message "version X or newer is
// required". version is X, the floor the message names; it is "" when a
// version_too_old answer names none (ok is still true: raise the configured
// version).
func RequiredVersion(err error) (version string, ok bool) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 {
		return "", false
	}
	if m := requiredVersionRE.FindStringSubmatch(ae.Message); m != nil {
		return m[1], true
	}
	return "", ae.Code == CodeVersionTooOld
}

// canonical turns "2.1.280", "v2.1" or "2.1.280 (Claude Code)" into a
// semver string ("v2.1.280"); "" when it is not a version.
func canonical(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		v = v[:i]
	}
	if v == "" {
		return ""
	}
	if v[0] != 'v' {
		v = "v" + v
	}
	if !semver.IsValid(v) {
		return ""
	}
	return v
}

func validVersion(v string) bool { return canonical(v) != "" }

// NewerVersion reports whether version a is newer than b, comparing them as
// semantic versions ("2.1" is 2.1.0; a leading "v" and text after a space,
// as in `claude --version` output, are ignored). A version is newer than
// anything that is not a version; a non-version is never newer.
func NewerVersion(a, b string) bool {
	ca, cb := canonical(a), canonical(b)
	switch {
	case ca == "":
		return false
	case cb == "":
		return true
	}
	return semver.Compare(ca, cb) > 0
}
