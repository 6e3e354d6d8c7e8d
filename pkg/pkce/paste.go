package pkce

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrBadPaste means the pasted text is not a code, code#state, query string or callback URL.
var ErrBadPaste = errors.New("unrecognised paste")

const maxPasteLen = 8 << 10

// ParsePaste extracts the authorization code from what the user pasted: the full callback
// URL (any host), "code#state", a query string "code=…&state=…" (with or without a leading
// "?"), or a bare code (only accepted when wantState is empty). Surrounding whitespace is
// trimmed. When a state is present and wantState is set, it must match (ErrStateMismatch).
// A callback URL carrying ?error=… yields an *AuthorizeError.
func ParsePaste(input, wantState string) (string, error) {
	s := strings.TrimSpace(input)
	if s == "" {
		return "", fmt.Errorf("%w: nothing was pasted", ErrBadPaste)
	}
	if len(s) > maxPasteLen {
		return "", fmt.Errorf("%w: input is too long (%d bytes)", ErrBadPaste, len(s))
	}
	var code, state string
	hasState := false
	switch {
	case strings.Contains(s, "://") || strings.HasPrefix(s, "?") || strings.Contains(s, "code="):
		raw := s
		if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil {
				return "", fmt.Errorf("%w: not a valid URL", ErrBadPaste)
			}
			raw = u.RawQuery
		} else if i := strings.IndexByte(s, '?'); i >= 0 {
			raw = s[i+1:] // "?code=…" or "localhost:53692/callback?code=…"
		}
		raw, _, _ = strings.Cut(raw, "#")
		q, err := url.ParseQuery(raw)
		if err != nil {
			return "", fmt.Errorf("%w: malformed query string", ErrBadPaste)
		}
		if e := q.Get("error"); e != "" {
			return "", &AuthorizeError{Code: e, Description: q.Get("error_description")}
		}
		code = q.Get("code")
		if code == "" {
			return "", fmt.Errorf("%w: no code parameter found; paste the code#state shown after login or the whole callback URL", ErrBadPaste)
		}
		state, hasState = q.Get("state"), q.Has("state")
	case strings.Contains(s, "#"):
		code, state, _ = strings.Cut(s, "#")
		hasState = true
		if code == "" {
			return "", fmt.Errorf("%w: the code part before '#' is empty", ErrBadPaste)
		}
	default:
		code = s
	}
	if !validCode(code) {
		return "", fmt.Errorf("%w: the code contains characters a code never has", ErrBadPaste)
	}
	if wantState == "" {
		return code, nil
	}
	if !hasState || state == "" {
		return "", fmt.Errorf("%w: the state part is missing; paste the whole code#state (or the callback URL), not just the code", ErrBadPaste)
	}
	if !stateEqual(state, wantState) {
		return "", fmt.Errorf("%w: the pasted code belongs to another login attempt", ErrStateMismatch)
	}
	return code, nil
}

// validCode accepts the URL-safe characters authorization codes are made of.
func validCode(code string) bool {
	if code == "" {
		return false
	}
	for _, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-._~+/=", r):
		default:
			return false
		}
	}
	return true
}
