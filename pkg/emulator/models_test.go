package emulator

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type modelsPage struct {
	Data []struct {
		ID             string `json:"id"`
		Type           string `json:"type"`
		DisplayName    string `json:"display_name"`
		CreatedAt      string `json:"created_at"`
		MaxInputTokens int64  `json:"max_input_tokens"`
		MaxTokens      int64  `json:"max_tokens"`
	} `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}

func (p modelsPage) ids() []string {
	out := make([]string, len(p.Data))
	for i, m := range p.Data {
		out[i] = m.ID
	}
	return out
}

func TestModelsList(t *testing.T) {
	_, srv := start(t, Options{})
	page := func(t *testing.T, query string) modelsPage {
		t.Helper()
		resp := get(t, srv, "/v1/models"+query, apiKeyHeaders(fakeTok("api", "models")))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var p modelsPage
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
		return p
	}
	all := page(t, "?limit=1000")
	assert.ElementsMatch(t, currentModels, all.ids(), "every current model, no retired one")
	assert.False(t, all.HasMore)
	assert.Equal(t, all.ids()[0], *all.FirstID)
	assert.Equal(t, all.ids()[len(all.ids())-1], *all.LastID)
	for _, m := range all.Data {
		assert.Equal(t, "model", m.Type)
		assert.NotEmpty(t, m.DisplayName)
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT`, m.CreatedAt)
		assert.Positive(t, m.MaxInputTokens)
		assert.Positive(t, m.MaxTokens)
	}
	ids := all.ids()

	tests := []struct {
		name    string
		query   string
		want    []string
		hasMore bool
	}{
		{"default limit 20", "", ids, false},
		{"first page", "?limit=5", ids[:5], true},
		{"after_id", "?limit=5&after_id=" + ids[4], ids[5:10], true},
		{"last page", "?limit=5&after_id=" + ids[9], ids[10:], false},
		{"before_id", "?limit=3&before_id=" + ids[6], ids[3:6], true},
		{"before_id at the start", "?limit=3&before_id=" + ids[2], ids[:2], false},
		{"after the last", "?after_id=" + ids[len(ids)-1], []string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := page(t, tt.query)
			assert.Equal(t, tt.want, p.ids())
			assert.Equal(t, tt.hasMore, p.HasMore)
			if len(tt.want) == 0 {
				assert.Nil(t, p.FirstID)
				assert.Nil(t, p.LastID)
			}
		})
	}

	bad := func(msg string) wantErr { return wantErr{status: 400, typ: "invalid_request_error", msg: msg} }
	for _, tt := range []struct {
		query string
		want  wantErr
	}{
		{"?limit=0", bad("limit: Input should be greater than or equal to 1")},
		{"?limit=1001", bad("limit: Input should be less than or equal to 1000")},
		{"?limit=ten", bad("limit: Input should be a valid integer, unable to parse string as an integer")},
		{"?after_id=a&before_id=b", bad("after_id and before_id cannot be used together")},
		{"?after_id=claude-sonnet-4-5", bad("after_id: model claude-sonnet-4-5 is not in the list")},
	} {
		t.Run(tt.query, func(t *testing.T) {
			assertErr(t, get(t, srv, "/v1/models"+tt.query, apiKeyHeaders(fakeTok("api", "models"))), tt.want)
		})
	}
}

func TestModelsAuthAndLookup(t *testing.T) {
	oat := oauthHeaders(fakeTok("oat", "models"))
	tests := []struct {
		name string
		path string
		h    http.Header
		want wantErr // status 200: success
	}{
		{"oauth list", "/v1/models?limit=1000", oat, wantErr{status: 200}},
		{"api key list", "/v1/models", apiKeyHeaders(fakeTok("api", "m")), wantErr{status: 200}},
		{"oauth without beta", "/v1/models", withHeader(oat, "Anthropic-Beta", ""), wantErr{status: 401, typ: "authentication_error", msg: "OAuth authentication is currently not supported."}},
		{"no credentials", "/v1/models", withHeader(oat, "Authorization", ""), wantErr{status: 401, typ: "authentication_error", msg: "x-api-key header is required"}},
		{"one model", "/v1/models/claude-opus-5-5", oat, wantErr{status: 200}},
		{"retired model", "/v1/models/claude-sonnet-4-5", oat, wantErr{status: 404, typ: "not_found_error", msg: "model: claude-sonnet-4-5"}},
		{"alias", "/v1/models/sonnet", oat, wantErr{status: 404, typ: "not_found_error", msg: "model: sonnet"}},
	}
	_, srv := start(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, srv, tt.path, tt.h)
			if tt.want.status != http.StatusOK {
				assertErr(t, resp, tt.want)
				return
			}
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
	t.Run("one model's fields", func(t *testing.T) {
		var m map[string]any
		require.NoError(t, json.NewDecoder(get(t, srv, "/v1/models/claude-haiku-4-5", oat).Body).Decode(&m))
		assert.Equal(t, map[string]any{"id": "claude-haiku-4-5", "type": "model", "display_name": "Claude Haiku 4.5",
			"created_at": "2025-10-15T00:00:00Z", "max_input_tokens": 200000.0, "max_tokens": 64000.0}, m)
	})

	sc, err := ParseScenario([]byte(`{"service": {"models_reject_oauth": true,
		"retired_models": ["claude-opus-4-6", "claude-3-*"]}}`))
	require.NoError(t, err)
	_, srv = start(t, Options{Scenario: sc})
	t.Run("scenario refuses oauth", func(t *testing.T) {
		assertErr(t, get(t, srv, "/v1/models", oat), wantErr{status: 401, typ: "authentication_error", msg: "OAuth authentication is currently not supported."})
		assertErr(t, get(t, srv, "/v1/models/claude-opus-5-5", oat), wantErr{status: 401, typ: "authentication_error", msg: "OAuth authentication is currently not supported."})
		require.Equal(t, http.StatusOK, post(t, srv, "/v1/messages", oat, body(nil)).StatusCode, "messages still accept oauth")
	})
	t.Run("scenario retires a model", func(t *testing.T) {
		api := apiKeyHeaders(fakeTok("api", "m"))
		var p modelsPage
		require.NoError(t, json.NewDecoder(get(t, srv, "/v1/models?limit=1000", api).Body).Decode(&p))
		assert.NotContains(t, p.ids(), "claude-opus-4-6")
		assert.Len(t, p.ids(), len(currentModels)-1)
		assertErr(t, post(t, srv, "/v1/messages", api, body(withModel("claude-opus-4-6"))), wantErr{status: 404, typ: "not_found_error", msg: "model: claude-opus-4-6"})
		assertErr(t, post(t, srv, "/v1/messages", api, body(withModel("claude-sonnet-4-5"))),
			wantErr{status: 404, typ: "not_found_error", msg: "model: claude-sonnet-4-5"}) // not retired, but not served either
	})
}
