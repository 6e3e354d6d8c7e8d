package proxy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/internal/retryafter"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// statusClientClosed is logged for requests whose client went away before
// an answer (nginx's convention); it is never sent.
const statusClientClosed = 499

// RequestIDPrefix starts the request id of every answer the proxy makes
// itself (Anthropic's own ids start "req_").
const RequestIDPrefix = "req_piauth_"

// apiErrorBody is Anthropic's error shape.
type apiErrorBody struct {
	Type      string       `json:"type"`
	Error     apiErrorInfo `json:"error"`
	RequestID string       `json:"request_id,omitempty"`
}

type apiErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// errorJSON renders an error in Anthropic's shape (without a request id:
// the form of an `event: error` in a stream).
func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(apiErrorBody{Type: "error", Error: apiErrorInfo{Type: typ, Message: msg}})
	return b
}

// newRequestID is a fresh id for an answer the proxy makes itself.
func newRequestID() string { return RequestIDPrefix + rand.Text() }

// fail answers with status and an error in Anthropic's shape, with a
// request-id header and request_id field of its own, and records it.
func (p *Proxy) fail(w http.ResponseWriter, rec *record, status int, typ, msg string) {
	rec.Status, rec.Error = status, typ
	p.countError(rec)
	id := newRequestID()
	if rec.requestID == "" {
		rec.requestID = id
	}
	body, _ := json.Marshal(apiErrorBody{Type: "error", RequestID: id,
		Error: apiErrorInfo{Type: typ, Message: maskString(msg)}}) // an upstream error may quote a token
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Request-Id", id)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// transportFailed answers a request whose upstream round trip failed before
// any response: a body the shaping cannot read (400), every key
// rate-limited (429 with retry-after and the last rate-limit headers) or
// overloaded (529), no usable credential (401), a silent upstream (504), or
// anything else (502).
func (p *Proxy) transportFailed(w http.ResponseWriter, r *http.Request, rec *record, err error) {
	if r.Context().Err() != nil {
		rec.Status, rec.Error = statusClientClosed, "client_closed"
		return
	}
	var limited *rotate.AllLimitedError
	switch {
	case errors.Is(err, stream.ErrBadRequestBody), errors.Is(err, stream.ErrInvalidParams):
		// What the API says of such a body; a 502 would make SDKs retry it.
		p.fail(w, rec, http.StatusBadRequest, "invalid_request_error", invalidBodyMessage(err))
	case errors.As(err, &limited):
		p.allLimited(w, rec, limited)
	case rotate.NeedsLogin(err):
		p.fail(w, rec, http.StatusUnauthorized, "authentication_error",
			"piauth proxy has no usable credential ("+err.Error()+"); run `piauth login` or `piauth status`")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, httpx.ErrTimeout):
		p.fail(w, rec, http.StatusGatewayTimeout, "timeout_error", "piauth proxy: upstream timed out: "+err.Error())
	default:
		p.fail(w, rec, http.StatusBadGateway, "api_error", "piauth proxy: upstream request failed: "+err.Error())
	}
}

// invalidBodyMessage is the message of a 400 for a body the shaping could
// not read: the shaping's own words.
func invalidBodyMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "prepare request: ")
}

// allLimited answers when every key is cooling down: 429 rate_limit_error
// (529 overloaded_error when every one is overloaded) with the
// anthropic-ratelimit-unified-* headers last seen on the key that frees
// first and a retry-after of at most Options.MaxRetryAfter.
func (p *Proxy) allLimited(w http.ResponseWriter, rec *record, limited *rotate.AllLimitedError) {
	h := w.Header()
	for name, vs := range p.limits.forFreeAt(p.opts.Pool, limited.FreeAt) {
		h[name] = vs
	}
	now := p.opts.Now()
	secs := retryAfter(limited.FreeAt, now)
	capped := ""
	if maxSecs := int64(p.opts.MaxRetryAfter / time.Second); secs > maxSecs {
		secs, capped = max(maxSecs, 1), " (retry-after capped at "+strconv.FormatInt(max(maxSecs, 1), 10)+" s)"
	}
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("X-Should-Retry", "true")
	if limited.Overloaded { // what the service itself says when it is busy
		p.fail(w, rec, statusOverloaded, "overloaded_error", "piauth proxy: "+limited.Error()+capped)
		return
	}
	p.fail(w, rec, http.StatusTooManyRequests, "rate_limit_error", "piauth proxy: "+limited.Error()+capped)
}

// capRetryAfter lowers a retry-after (and retry-after-ms) passed on from
// upstream to Options.MaxRetryAfter: a subscription window can ask for
// hours, and SDKs that obey it would sleep that long without a word.
func (p *Proxy) capRetryAfter(h http.Header) {
	d, ok := retryafter.Parse(h, p.opts.Now(), 0)
	if !ok || d <= p.opts.MaxRetryAfter {
		return
	}
	h.Set("Retry-After", strconv.FormatInt(max(int64(p.opts.MaxRetryAfter/time.Second), 1), 10))
	if h.Get("Retry-After-Ms") != "" {
		h.Set("Retry-After-Ms", strconv.FormatInt(p.opts.MaxRetryAfter.Milliseconds(), 10))
	}
}

// retryAfter is the seconds until t, at least 1.
func retryAfter(t, now time.Time) int64 {
	return max(int64(math.Ceil(t.Sub(now).Seconds())), 1)
}
