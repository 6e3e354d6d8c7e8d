package emulator

import (
	"net/http"
	"slices"
	"strconv"
)

// Page size limits of GET /v1/models.
const (
	defaultModelsLimit = 20
	maxModelsLimit     = 1000
)

// modelsAuth authenticates a Models API request as for Messages; with
// Service.ModelsRejectOAuth it refuses OAuth tokens. false when refused.
func (e *Emulator) modelsAuth(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := e.admit(w, r)
	if ok && isOAuth(tok) && e.rules.ModelsRejectOAuth {
		e.fail(w, &failure{status: http.StatusUnauthorized, typ: "authentication_error", msg: msgOAuthNotAllowed})
		return false
	}
	return ok
}

// admit authenticates r as the Messages API does, counts its token and
// answers a refusal itself; ok is false when it did.
func (e *Emulator) admit(w http.ResponseWriter, r *http.Request) (tok string, ok bool) {
	tok, f := e.authenticate(r)
	if tok != "" {
		noteToken(w, tok)
		e.countToken(tok)
	}
	if f != nil {
		e.fail(w, f)
		return tok, false
	}
	return tok, true
}

func modelJSON(m Model) map[string]any {
	return map[string]any{
		"id": m.ID, "type": "model", "display_name": m.DisplayName, "created_at": m.CreatedAt,
		"max_input_tokens": m.MaxInputTokens, "max_tokens": m.MaxTokens,
	}
}

// handleModel answers GET /v1/models/{id}; retired and unknown ids are 404.
func (e *Emulator) handleModel(w http.ResponseWriter, r *http.Request) {
	if !e.modelsAuth(w, r) {
		return
	}
	id := r.PathValue("id")
	m, ok := e.rules.model(id)
	if !ok {
		e.apiError(w, http.StatusNotFound, "not_found_error", "model: "+id, nil)
		return
	}
	w.Header().Set("request-id", e.requestID())
	writeJSON(w, http.StatusOK, modelJSON(m))
}

// handleModels answers GET /v1/models with one page of the served models:
// limit (1–1000, default 20), after_id or before_id.
func (e *Emulator) handleModels(w http.ResponseWriter, r *http.Request) {
	if !e.modelsAuth(w, r) {
		return
	}
	q := r.URL.Query()
	limit := defaultModelsLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		switch {
		case err != nil:
			e.fail(w, invalid("limit: Input should be a valid integer, unable to parse string as an integer"))
			return
		case n < 1:
			e.fail(w, invalid("limit: Input should be greater than or equal to 1"))
			return
		case n > maxModelsLimit:
			e.fail(w, invalid("limit: Input should be less than or equal to 1000"))
			return
		}
		limit = n
	}
	after, before := q.Get("after_id"), q.Get("before_id")
	if after != "" && before != "" {
		e.fail(w, invalid("after_id and before_id cannot be used together"))
		return
	}
	list := e.rules.listed()
	index := func(param, id string) (int, bool) {
		i := slices.IndexFunc(list, func(m Model) bool { return m.ID == id })
		if i < 0 {
			e.fail(w, invalid(param+": model "+id+" is not in the list"))
		}
		return i, i >= 0
	}
	lo, hi := 0, min(limit, len(list))
	switch {
	case after != "":
		i, ok := index("after_id", after)
		if !ok {
			return
		}
		lo, hi = i+1, min(i+1+limit, len(list))
	case before != "":
		i, ok := index("before_id", before)
		if !ok {
			return
		}
		lo, hi = max(0, i-limit), i
	}
	page := list[lo:hi]
	data := make([]map[string]any, len(page))
	for i, m := range page {
		data[i] = modelJSON(m)
	}
	var first, last any
	if len(page) > 0 {
		first, last = page[0].ID, page[len(page)-1].ID
	}
	hasMore := hi < len(list)
	if before != "" {
		hasMore = lo > 0
	}
	w.Header().Set("request-id", e.requestID())
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": hasMore, "first_id": first, "last_id": last})
}
