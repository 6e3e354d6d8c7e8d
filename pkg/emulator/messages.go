package emulator

import (
	"net/http"
	"time"
)

// check runs every request rule in order: credentials were checked
// before; then the request shape, the service rules (model, cache_control,
// tool names) and, for OAuth tokens, the OAuth gates.
func (e *Emulator) check(r *http.Request, req *messagesRequest, oauth bool) *failure {
	if f := req.validateShape(); f != nil {
		return f
	}
	m, f := e.rules.validateService(req)
	if f != nil || !oauth {
		return f
	}
	return e.oauthGates(r, req, m)
}

func (e *Emulator) handleMessages(w http.ResponseWriter, r *http.Request) {
	tok, ok := e.admit(w, r)
	if !ok {
		return
	}
	oauth := isOAuth(tok)
	var req messagesRequest
	if _, f := decodeBody(w, r, &req); f != nil {
		e.fail(w, f)
		return
	}
	if f := e.check(r, &req, oauth); f != nil {
		e.fail(w, f)
		return
	}

	out, reply, unified := e.plan(tok)
	if out.DelayMS > 0 {
		if err := e.opts.Sleep(r.Context(), time.Duration(out.DelayMS)*time.Millisecond); err != nil {
			return
		}
	}
	if out.Status != http.StatusOK {
		e.fail(w, e.outcomeFailure(out))
		return
	}
	if oauth {
		setUnified(w.Header(), unified, e.opts.Now())
	}
	for k, v := range out.Headers {
		if v == "" {
			w.Header().Del(k)
		} else {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set("request-id", e.requestID())
	m := e.newMessage(&req, reply)
	if !req.Stream {
		if out.Midstream || out.MidstreamEarly {
			e.apiError(w, 529, "overloaded_error", "Overloaded", nil)
			return
		}
		e.writeJSONMessage(w, m)
		return
	}
	e.writeStream(r.Context(), w, m, out.Midstream, out.MidstreamEarly)
}
