package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/piauth/piauth/internal/secret"
)

// ErrTruncated reports a stream that ended before message_stop. It is wrapped
// with a description of what arrived.
var ErrTruncated = errors.New("stream ended before message_stop")

// maxErrorBody caps how much of an error response CheckResponse reads.
const maxErrorBody = 1 << 20

// APIError is a non-2xx response from the Messages API.
type APIError struct {
	Status    int         // HTTP status code
	Type      string      // error.type, e.g. rate_limit_error; empty for non-JSON bodies
	Code      string      // error.error_code when present, e.g. claude_code_version_too_old
	Message   string      // error.message, or the start of a non-JSON body
	RequestID string      // request-id header, else the body's request_id
	Header    http.Header // response headers (retry-after, rate-limit headers)
}

// Error describes the failure without credentials.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "anthropic: HTTP %d", e.Status)
	if e.Type != "" {
		b.WriteString(" " + e.Type)
	}
	if e.Message != "" {
		b.WriteString(": " + secret.MaskAll(e.Message))
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	return b.String()
}

// StreamError is an `event: error` received after the HTTP status was 200.
type StreamError struct {
	Type    string // e.g. overloaded_error
	Message string
}

// Error describes the stream failure.
func (e *StreamError) Error() string {
	return "anthropic stream error: " + e.Type + ": " + secret.MaskAll(e.Message)
}

type wireError struct {
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"error_code"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// CheckResponse returns nil for a 2xx response. Otherwise it reads at most
// 1 MiB of the body, closes it and returns an *APIError. Bodies that are not
// the API's JSON error shape are tolerated: their text becomes the message.
func CheckResponse(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &APIError{Status: resp.StatusCode, Header: resp.Header, RequestID: resp.Header.Get("request-id")}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}
	var w wireError
	if json.Unmarshal(body, &w) == nil && w.Error != nil {
		e.Type, e.Message, e.Code = w.Error.Type, w.Error.Message, w.Error.Code
		if e.RequestID == "" {
			e.RequestID = w.RequestID
		}
		return e
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}
