package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/pkg/rotate"
)

// statusClientClosed is logged for requests whose client went away before
// an answer (nginx's convention); it is never sent.
const statusClientClosed = 499

// apiErrorBody is Anthropic's error shape.
type apiErrorBody struct {
	Type  string       `json:"type"`
	Error apiErrorInfo `json:"error"`
}

type apiErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// errorJSON renders an error in Anthropic's shape.
func errorJSON(typ, msg string) []byte {
	b, _ := json.Marshal(apiErrorBody{Type: "error", Error: apiErrorInfo{Type: typ, Message: msg}})
	return b
}

// fail answers with status and an error in Anthropic's shape, and records it.
func (p *Proxy) fail(w http.ResponseWriter, rec *record, status int, typ, msg string) {
	rec.Status, rec.Error = status, typ
	body := errorJSON(typ, maskString(msg)) // an upstream error may quote a token
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// transportFailed answers a request whose upstream round trip failed before
// any response: every key rate-limited (429 with retry-after) or overloaded
// (529), no usable credential (401), a silent upstream (504), or anything
// else (502).
func (p *Proxy) transportFailed(w http.ResponseWriter, r *http.Request, rec *record, err error) {
	if r.Context().Err() != nil {
		rec.Status, rec.Error = statusClientClosed, "client_closed"
		return
	}
	var limited *rotate.AllLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfter(limited.FreeAt, p.opts.Now()), 10))
		w.Header().Set("X-Should-Retry", "true")
		if limited.Overloaded { // what the service itself says when it is busy
			p.fail(w, rec, 529, "overloaded_error", "piauth proxy: "+limited.Error())
			return
		}
		p.fail(w, rec, http.StatusTooManyRequests, "rate_limit_error", "piauth proxy: "+limited.Error())
	case rotate.NeedsLogin(err):
		p.fail(w, rec, http.StatusUnauthorized, "authentication_error",
			"piauth proxy has no usable credential ("+err.Error()+"); run `piauth login` or `piauth status`")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, httpx.ErrTimeout):
		p.fail(w, rec, http.StatusGatewayTimeout, "timeout_error", "piauth proxy: upstream timed out: "+err.Error())
	default:
		p.fail(w, rec, http.StatusBadGateway, "api_error", "piauth proxy: upstream request failed: "+err.Error())
	}
}

// retryAfter is the seconds until t, at least 1.
func retryAfter(t, now time.Time) int64 {
	return max(int64(math.Ceil(t.Sub(now).Seconds())), 1)
}
