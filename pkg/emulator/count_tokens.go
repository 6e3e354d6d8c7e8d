package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// handleCountTokens answers POST /v1/messages/count_tokens with
// {"input_tokens": N}. Authentication and the OAuth rules (identity block,
// tool names) are those of /v1/messages; max_tokens is not required. N is a
// deterministic estimate: one token per four bytes of the request body.
func (e *Emulator) handleCountTokens(w http.ResponseWriter, r *http.Request) {
	tok, status, typ, msg := e.authenticate(r)
	if tok != "" {
		noteToken(w, tok)
		e.countToken(tok)
	}
	if status != 0 {
		e.apiError(w, status, typ, msg, nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 32<<20))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e.apiError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request exceeds the maximum allowed number of bytes.", nil)
			return
		}
		e.apiError(w, http.StatusBadRequest, "invalid_request_error", "There was an issue with the format of your request: "+err.Error(), nil)
		return
	}
	var req messagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		e.apiError(w, http.StatusBadRequest, "invalid_request_error", "There was an issue with the format of your request: "+err.Error(), nil)
		return
	}
	if req.MaxTokens == nil {
		unbounded := int64(1 << 62) // count_tokens takes no max_tokens
		req.MaxTokens = &unbounded
	}
	if err := req.validate(strings.HasPrefix(tok, "sk-ant-oat")); err != nil {
		e.apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error(), nil)
		return
	}
	w.Header().Set("request-id", e.requestID())
	writeJSON(w, http.StatusOK, map[string]int{"input_tokens": max(len(body)/4, 1)})
}
