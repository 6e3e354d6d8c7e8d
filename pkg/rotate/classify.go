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
	ClassFatal
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
		switch ae.Status {
		case http.StatusTooManyRequests:
			return ClassRotate
		case 529:
			return ClassOverloaded
		case http.StatusUnauthorized:
			return ClassAuth
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
