// Package rotate spreads Messages requests over a pool of keys: it classifies
// failures, computes how long a key cools down, chooses the key for each
// request and retries at once on the next usable key from inside an
// http.RoundTripper, before any byte of the answer reached the caller.
package rotate

import (
	"errors"
	"net/http"
	"strings"

	"github.com/piauth/piauth/pkg/stream"
)

// Class is what a failure means for the key that got it.
type Class int

// Classes of failures.
const (
	// ClassOK is no failure.
	ClassOK Class = iota
	// ClassRotate is a rate limit: the key cools down until its reset and the
	// request moves on to the next key.
	ClassRotate
	// ClassOverloaded is an overloaded API: the key cools down briefly (30 s)
	// and the request moves on to the next key.
	ClassOverloaded
	// ClassAuth is a refused credential: refresh it, or mark or evict it.
	ClassAuth
	// ClassFatal is anything else: no rotation, the error is reported.
	//
	// This includes 5xx statuses other than 529 (500 api_error, 502, 503,
	// 504 timeout_error): they say nothing about the key, so cooling it down
	// would only spread cooldowns over healthy keys and end in a misleading
	// "all keys are rate-limited". The caller reports (or retries) them.
	// So are the answers that are about the request or the plan, not the
	// key: the third-party classifier's 400, "out of extra usage", the
	// long-context 429 (Hint explains each).
	ClassFatal
	// ClassShape is a 429 with no rate-limit headers at all: what the
	// service answers (message "Error") to an OAuth request whose shape it
	// does not accept from Claude Code, not a rate limit. No key cools down;
	// at most one other key is tried.
	ClassShape
	// ClassDisabled is a 403 "OAuth authentication is currently not allowed
	// for this organization": the account is disabled. The key is taken out
	// of rotation (state disabled) and the request moves to the next key.
	ClassDisabled
	// ClassVersion is a 400 claude_code_version_too_old: the Claude Code
	// version we claim is below the model's floor. The version is raised
	// (learnt from the message) and the request retried once.
	ClassVersion
)

// String returns the class name.
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassRotate:
		return "rotate"
	case ClassOverloaded:
		return "overloaded"
	case ClassAuth:
		return "auth"
	case ClassShape:
		return "shape"
	case ClassDisabled:
		return "disabled"
	case ClassVersion:
		return "version"
	}
	return "fatal"
}

// Rotates reports whether the class moves the request to the next key after
// cooling the current one down.
func (c Class) Rotates() bool { return c == ClassRotate || c == ClassOverloaded }

// Classify tells what err means for the key that produced it. It reads the
// status and error type of a *stream.APIError, the type of a
// *stream.StreamError, and otherwise the error text, matching at least what
// the seed extension matches: 429, "rate limit", "too many requests" and
// "overloaded" rotate; 401, "invalid api key" and "authentication_error" are
// auth failures. A nil error is ClassOK.
func Classify(err error) Class {
	if err == nil {
		return ClassOK
	}
	var ae *stream.APIError
	if errors.As(err, &ae) {
		if _, ok := stream.RequiredVersion(ae); ok {
			return ClassVersion
		}
		switch ae.Status {
		case http.StatusTooManyRequests:
			switch {
			case strings.Contains(strings.ToLower(ae.Message), msgLongContext):
				return ClassFatal // the plan, not the key
			case !hasLimitHeaders(ae.Header):
				return ClassShape
			}
			return ClassRotate
		case 529:
			return ClassOverloaded
		case http.StatusUnauthorized:
			return ClassAuth
		case http.StatusForbidden:
			if strings.Contains(strings.ToLower(ae.Message), msgOrgDisabled) {
				return ClassDisabled
			}
		case http.StatusBadRequest:
			return ClassFatal // never a key problem (classifier, extra usage, bad request)
		}
		if c := classifyType(ae.Type); c != ClassFatal {
			return c
		}
		if ae.Status >= 500 {
			// A 5xx whose text says it is a rate limit or an overload.
			if c := classifyText(ae.Message); c.Rotates() {
				return c
			}
		}
		return ClassFatal
	}
	var se *stream.StreamError
	if errors.As(err, &se) {
		if c := classifyType(se.Type); c != ClassFatal {
			return c
		}
		return classifyText(se.Type + " " + se.Message)
	}
	return classifyText(err.Error())
}

// Texts of answers that are classified by their message (lower case).
const (
	msgOrgDisabled = "oauth authentication is currently not allowed for this organization"
	msgLongContext = "extra usage is required for long context"
	msgThirdParty  = "third-party apps now draw from your extra usage"
	msgOutOfExtra  = "out of extra usage"
)

// hasLimitHeaders reports whether an answer carries any rate-limit header:
// retry-after, retry-after-ms or an anthropic-ratelimit-* header.
func hasLimitHeaders(h http.Header) bool {
	for name := range h {
		n := strings.ToLower(name)
		if n == "retry-after" || n == "retry-after-ms" || strings.HasPrefix(n, "anthropic-ratelimit-") {
			return true
		}
	}
	return false
}

// Hint is a plain one-line explanation of a failure that is not the key's,
// for the person reading the error; "" when there is nothing to add.
func Hint(err error) string {
	var ae *stream.APIError
	if !errors.As(err, &ae) {
		return ""
	}
	msg := strings.ToLower(ae.Message)
	switch {
	case strings.Contains(msg, msgThirdParty):
		return "Anthropic's classifier took this request for a third-party app (it judges tool names); your plan limits are not used up. Keep tool names to Claude Code's own or mcp__server__tool"
	case strings.Contains(msg, msgOutOfExtra):
		return "the account's extra usage is spent; requests within the plan limits still work"
	case strings.Contains(msg, msgLongContext):
		return "this plan serves long-context requests only with extra usage; shorten the prompt or enable extra usage"
	}
	switch Classify(ae) {
	case ClassShape:
		return "a 429 with no rate-limit headers is how the service refuses a request it does not accept from Claude Code (identity block, tools), not a rate limit; no key was cooled down"
	case ClassDisabled:
		return "the service does not allow OAuth for this account's organization; log in with another account"
	case ClassVersion:
		v, _ := stream.RequiredVersion(ae)
		return "the service requires a newer Claude Code version (" + v + "); set PIAUTH_CLAUDE_CODE_VERSION"
	case ClassAuth:
		return "run piauth login"
	}
	return ""
}

func classifyType(typ string) Class {
	switch typ {
	case "rate_limit_error":
		return ClassRotate
	case "overloaded_error":
		return ClassOverloaded
	case "authentication_error":
		return ClassAuth
	}
	return ClassFatal
}

func classifyText(s string) Class {
	s = strings.ToLower(s)
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				return true
			}
		}
		return false
	}
	switch {
	case has("401", "invalid api key", "invalid x-api-key", "authentication_error"):
		return ClassAuth
	case has("overloaded", "529"):
		return ClassOverloaded
	case has("429", "rate limit", "rate_limit", "too many requests"):
		return ClassRotate
	}
	return ClassFatal
}
