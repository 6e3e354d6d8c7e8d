package emulator

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultService(t *testing.T) {
	s := DefaultService()
	assert.Equal(t, IdentityText, s.IdentityText)
	ids := make([]string, len(s.Models))
	for i, m := range s.Models {
		ids[i] = m.ID
	}
	assert.ElementsMatch(t, currentModels, ids)
	assert.Equal(t, map[string]string{
		"claude-opus-5-5": "2.1.280", "claude-sonnet-5-5": "2.1.280", "claude-haiku-5-5": "2.1.280", "claude-fable-5-2": "2.1.280",
		"claude-fable-5-1": "2.1.251", "claude-opus-5": "2.1.251", "claude-sonnet-5": "2.1.251",
	}, s.VersionFloors)
	assert.Equal(t, 4, s.MaxCacheControl)
	assert.ElementsMatch(t, []string{"invalid", "disabled", "ratelimited", "overloaded", "midstream", "extrausage", "outofextra", "longcontext"},
		keys(s.Markers))

	s.VersionFloors["claude-opus-5-5"] = "9.9.9"
	s.Models[0].ID = "changed"
	assert.Equal(t, "2.1.280", DefaultService().VersionFloors["claude-opus-5-5"], "each call is a fresh copy")
	assert.NotEqual(t, "changed", DefaultService().Models[0].ID)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestScenarioServiceOverride(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "scenario-example.json"))
	require.NoError(t, err)
	s := sc.Service
	require.NotNil(t, s)
	assert.Equal(t, "2.1.300", s.VersionFloors["claude-opus-5-5"], "overridden")
	assert.Equal(t, "2.1.280", s.VersionFloors["claude-sonnet-5-5"], "objects merge key by key")
	assert.Equal(t, 18000, s.Markers["overloaded"].UnifiedResetIn)
	assert.Equal(t, 429, s.Markers["ratelimited"].Status, "other markers kept")
	assert.Equal(t, []string{"Cron"}, s.Classifier.ToolPrefixes)
	assert.Contains(t, s.Classifier.Tools, "TodoWrite", "nested objects merge field by field")
	assert.Equal(t, "Error", s.Messages.IdentityRefused)
	assert.NotEmpty(t, s.Messages.ThirdParty)
	assert.True(t, s.ModelsRejectOAuth)
	assert.Len(t, s.Models, len(currentModels), "models not given: defaults")

	noService, err := ParseScenario([]byte(`{}`))
	require.NoError(t, err)
	assert.Equal(t, DefaultService(), noService.Service)
}

func TestServiceFromGo(t *testing.T) {
	svc := DefaultService()
	svc.VersionFloors["claude-opus-4-8"] = "2.1.300"
	svc.IdentityGatedFamilies = []string{"opus"}
	_, srv := start(t, Options{Scenario: &Scenario{Service: svc}})
	old := withHeader(oauthHeaders(fakeTok("oat", "go")), "User-Agent", "claude-cli/2.1.299 (external, cli)")
	assertErr(t, post(t, srv, "/v1/messages", old, body(withModel("claude-opus-4-8"))), tooOld("2.1.299", "2.1.300"))
	noSystem := body(func(m map[string]any) { m["model"] = "claude-sonnet-4-6"; delete(m, "system") })
	assert.Equal(t, http.StatusOK, post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "go")), noSystem).StatusCode, "sonnet no longer gated")

	bad := DefaultService()
	bad.ToolNamePattern = "("
	assert.PanicsWithValue(t, "emulator: invalid service: tool_name_pattern: error parsing regexp: missing closing ): `(`",
		func() { New(Options{Scenario: &Scenario{Service: bad}}) })
}

func TestParseScenarioServiceErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown service field", `{"service": {"floors": {}}}`, `unknown field "floors"`},
		{"bad floor", `{"service": {"version_floors": {"claude-opus-5-5": "latest"}}}`, `version_floors[claude-opus-5-5]: "latest" is not a version`},
		{"bad tool pattern", `{"service": {"tool_name_pattern": "["}}`, "tool_name_pattern"},
		{"bad classifier pattern", `{"service": {"classifier": {"refused_patterns": ["("]}}}`, "classifier.refused_patterns"},
		{"model without id", `{"service": {"models": [{"display_name": "X"}]}}`, "models[0]: id is required"},
		{"marker without status", `{"service": {"markers": {"odd": {"message": "x"}}}}`, "markers[odd]: status 0"},
		{"negative cache limit", `{"service": {"max_cache_control": -1}}`, "max_cache_control"},
		{"bad usage outcome", `{"tokens": [{"match": "a", "usage_outcomes": [{"status": 302}]}]}`, "tokens[0].usage_outcomes[0]: status 302"},
		{"bad limit kind", `{"usage_report": {"limits": [{"kind": "daily", "percent": 1}]}}`, `usage_report: limits[0]: kind "daily"`},
		{"negative utilisation", `{"tokens": [{"match": "a", "usage_report": {"five_hour": -1}}]}`, "tokens[0].usage_report"},
		{"negative unified reset", `{"tokens": [{"match": "a", "outcomes": [{"status": 529, "unified_reset_in": -1}]}]}`, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tt.doc))
			require.ErrorIs(t, err, ErrInvalidScenario)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestScenarioModelsReplace(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"service": {"models": [
		{"id": "claude-test-1", "display_name": "Claude Test 1", "family": "haiku", "created_at": "2026-12-01T00:00:00Z",
		 "max_input_tokens": 1000, "max_tokens": 100}]}}`))
	require.NoError(t, err)
	require.Equal(t, []Model{{ID: "claude-test-1", DisplayName: "Claude Test 1", Family: "haiku", CreatedAt: "2026-12-01T00:00:00Z",
		MaxInputTokens: 1000, MaxTokens: 100}}, sc.Service.Models)
	_, srv := start(t, Options{Scenario: sc})
	oat := oauthHeaders(fakeTok("oat", "replace"))
	assert.Equal(t, http.StatusOK, post(t, srv, "/v1/messages", oat, body(withModel("claude-test-1"))).StatusCode)
	assertErr(t, post(t, srv, "/v1/messages", oat, body(nil)), wantErr{status: 404, typ: "not_found_error", msg: "model: " + testModel})
}

func TestStatsRefusalCounters(t *testing.T) {
	_, srv := start(t, Options{})
	oat := oauthHeaders(fakeTok("oat", "stats"))
	post(t, srv, "/v1/messages", withHeader(oat, "User-Agent", "claude-cli/2.1.1 (external, cli)"), body(nil))
	post(t, srv, "/v1/messages", oat, body(func(m map[string]any) { delete(m, "system") }))
	post(t, srv, "/v1/messages", oat, body(func(m map[string]any) { m["tools"] = tools("mcp_read") }))
	get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "stats")))
	get(t, srv, "/api/oauth/usage", usageHeaders(fakeTok("oat", "stats")))

	var raw map[string]any
	resp := get(t, srv, "/_emulator/stats", nil)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	assert.Equal(t, 1.0, raw["version_refused"])
	assert.Equal(t, 1.0, raw["identity_refused"])
	assert.Equal(t, 1.0, raw["third_party_refused"])
	assert.Equal(t, map[string]any{Fingerprint(fakeTok("oat", "stats")): 2.0}, raw["usage_calls"])

	post(t, srv, "/_emulator/reset", http.Header{}, "")
	raw = nil
	require.NoError(t, json.NewDecoder(get(t, srv, "/_emulator/stats", nil).Body).Decode(&raw))
	assert.Equal(t, 0.0, raw["version_refused"])
	assert.Equal(t, map[string]any{}, raw["usage_calls"])
}
