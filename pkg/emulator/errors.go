package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// failure is an error answer in the Messages API shape.
type failure struct {
	status int
	typ    string      // default errorType(status)
	msg    string      // default defaultMessage(status)
	code   string      // error.error_code, when set
	header http.Header // extra response headers
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers in the Messages API error shape with a request-id header.
func (e *Emulator) apiError(w http.ResponseWriter, status int, typ, msg string, h http.Header) {
	e.fail(w, &failure{status: status, typ: typ, msg: msg, header: h})
}

// fail writes f with a request-id header; an empty header value in f.header
// removes that header.
func (e *Emulator) fail(w http.ResponseWriter, f *failure) {
	typ := f.typ
	if typ == "" {
		typ = errorType(f.status)
	}
	msg := f.msg
	if msg == "" {
		msg = defaultMessage(f.status)
	}
	id := e.requestID()
	w.Header().Set("request-id", id)
	w.Header().Set("x-should-retry", fmt.Sprint(f.status == 429 || f.status >= 500))
	for k, vs := range f.header {
		if len(vs) == 0 || (len(vs) == 1 && vs[0] == "") {
			w.Header().Del(k)
			continue
		}
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	body := map[string]string{"type": typ, "message": msg}
	if f.code != "" {
		body["error_code"] = f.code
	}
	writeJSON(w, f.status, map[string]any{"type": "error", "error": body, "request_id": id})
}

// oauthError answers in the OAuth token endpoint error shape.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// errorType maps an HTTP status to the Messages API error type.
func errorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

func defaultMessage(status int) string {
	switch status {
	case 429:
		return "This request would exceed your account's rate limit. Please try again later."
	case 529:
		return "Overloaded"
	case 401:
		return msgInvalidAPIKey
	}
	return http.StatusText(status)
}
