package emulator

import "net/http"

// handleCountTokens answers POST /v1/messages/count_tokens with
// {"input_tokens": N}. Authentication and the rules (model, cache_control,
// tool names, and for OAuth the version floor, identity and classifier) are
// those of /v1/messages; max_tokens is not required. N is a deterministic
// estimate: one token per four bytes of the request body.
func (e *Emulator) handleCountTokens(w http.ResponseWriter, r *http.Request) {
	tok, ok := e.admit(w, r)
	if !ok {
		return
	}
	var req messagesRequest
	raw, f := decodeBody(w, r, &req)
	if f != nil {
		e.fail(w, f)
		return
	}
	if req.MaxTokens == nil {
		unbounded := int64(1 << 62) // count_tokens takes no max_tokens
		req.MaxTokens = &unbounded
	}
	if f := e.check(r, &req, isOAuth(tok)); f != nil {
		e.fail(w, f)
		return
	}
	w.Header().Set("request-id", e.requestID())
	writeJSON(w, http.StatusOK, map[string]int{"input_tokens": max(len(raw)/4, 1)})
}
