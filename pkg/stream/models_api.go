package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxModelPages bounds how many pages of /v1/models are read (1,000 each).
const maxModelPages = 10

// APIModel is one item of GET /v1/models.
type APIModel struct {
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	CreatedAt      string `json:"created_at"`
	MaxInputTokens int    `json:"max_input_tokens"`
	MaxTokens      int    `json:"max_tokens"`
}

// ListModels asks GET baseURL/v1/models with token (headers as for a
// Messages request), following has_more/last_id. Errors are an *APIError
// for an HTTP error answer (the service may refuse OAuth tokens there).
func (s *Service) ListModels(ctx context.Context, hc *http.Client, baseURL, token string) ([]APIModel, error) {
	var out []APIModel
	after := ""
	for range maxModelPages {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after_id", after)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/models?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		s.SetAuthHeaders(req.Header, token, false)
		req.Header.Del("Content-Type")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		if err := CheckResponse(resp); err != nil {
			return nil, err
		}
		var page struct {
			Data    []APIModel `json:"data"`
			HasMore bool       `json:"has_more"`
			LastID  string     `json:"last_id"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&page)
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET /v1/models: %w", err)
		}
		out = append(out, page.Data...)
		if !page.HasMore || page.LastID == "" {
			return out, nil
		}
		after = page.LastID
	}
	return out, nil
}

// MergeModels lays an answer of /v1/models over the table: every model the
// API lists (retired ones left out), with the table's aliases, prices and
// limits where the table knows it (the API's own limits and name win when
// given). Listed is true for models the table knows.
func (s *Service) MergeModels(api []APIModel) []Model {
	out := make([]Model, 0, len(api))
	for _, a := range api {
		m, err := s.Resolve(a.ID)
		if err != nil || m.Retired {
			continue
		}
		if a.DisplayName != "" {
			m.DisplayName = a.DisplayName
		}
		if a.MaxInputTokens > 0 {
			m.ContextWindow = a.MaxInputTokens
		}
		if a.MaxTokens > 0 {
			m.MaxOutput = a.MaxTokens
		}
		out = append(out, m)
	}
	return out
}
