package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/piauth/piauth/pkg/stream"
)

// Models API routes.
const (
	modelsPath   = "/v1/models"
	modelsPrefix = "/v1/models/"
)

// modelsTTL is how long an upstream model list is reused; modelsTimeout
// bounds asking for it (Claude Code gives the whole call 3 s).
const (
	modelsTTL     = 10 * time.Minute
	modelsTimeout = 2500 * time.Millisecond
)

// unknownCreated is the created_at of a model the upstream did not list
// (the built-in table has no dates); SDKs require a valid time there.
const unknownCreated = "1970-01-01T00:00:00Z"

// modelItem is one model in the Models API shape.
type modelItem struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	CreatedAt      string `json:"created_at"`
	MaxInputTokens int    `json:"max_input_tokens,omitempty"`
	MaxTokens      int    `json:"max_tokens,omitempty"`
}

// modelCache keeps the last upstream model list.
type modelCache struct {
	mu    sync.Mutex
	items []modelItem
	at    time.Time
}

// models is the list GET /v1/models answers: the upstream's (asked with our
// credential through Options.ListModels) merged with the built-in table
// (stream.Service.MergeModels: aliases' targets, limits, retired models
// left out), or the built-in table alone when the upstream refuses or
// does not answer in time.
func (p *Proxy) models(ctx context.Context) []modelItem {
	now := p.opts.Now()
	p.modelCache.mu.Lock()
	defer p.modelCache.mu.Unlock()
	if p.modelCache.items != nil && now.Sub(p.modelCache.at) < modelsTTL {
		return p.modelCache.items
	}
	svc := p.opts.Service
	if svc == nil {
		svc = stream.Builtin()
	}
	if p.opts.ListModels != nil {
		ctx, cancel := context.WithTimeout(ctx, modelsTimeout)
		api, err := p.opts.ListModels(ctx)
		cancel()
		if err == nil {
			created := make(map[string]string, len(api))
			for _, a := range api {
				created[a.ID] = a.CreatedAt
			}
			items := itemsOf(svc.MergeModels(api), created)
			p.modelCache.items, p.modelCache.at = items, now
			return items
		}
	}
	return itemsOf(svc.Models(), nil)
}

func itemsOf(ms []stream.Model, created map[string]string) []modelItem {
	out := make([]modelItem, 0, len(ms))
	for _, m := range ms {
		c := created[m.ID]
		if c == "" {
			c = unknownCreated
		}
		name := m.DisplayName
		if name == "" {
			name = m.ID
		}
		out = append(out, modelItem{Type: "model", ID: m.ID, DisplayName: name, CreatedAt: c,
			MaxInputTokens: m.ContextWindow, MaxTokens: m.MaxOutput})
	}
	return out
}

// serveModels answers GET /v1/models (one page holding every model) and
// GET /v1/models/{id} (an id or an alias of the table).
func (p *Proxy) serveModels(w http.ResponseWriter, r *http.Request, rec *record) {
	items := p.models(r.Context())
	id, one := strings.CutPrefix(r.URL.Path, modelsPrefix)
	if !one {
		page := struct {
			Data    []modelItem `json:"data"`
			HasMore bool        `json:"has_more"`
			FirstID *string     `json:"first_id"`
			LastID  *string     `json:"last_id"`
		}{Data: items}
		if len(items) > 0 {
			page.FirstID, page.LastID = &items[0].ID, &items[len(items)-1].ID
		}
		p.writeJSON(w, rec, page)
		return
	}
	svc := p.opts.Service
	if svc == nil {
		svc = stream.Builtin()
	}
	want := id
	if m, err := svc.Resolve(id); err == nil && m.Listed {
		want = m.ID
	}
	for _, it := range items {
		if it.ID == id || it.ID == want {
			p.writeJSON(w, rec, it)
			return
		}
	}
	p.fail(w, rec, http.StatusNotFound, "not_found_error", "model: "+id)
}

// writeJSON answers 200 with v as JSON.
func (p *Proxy) writeJSON(w http.ResponseWriter, rec *record, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Request-Id", newRequestID())
	rec.Status = http.StatusOK
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
