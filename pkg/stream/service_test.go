package stream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBuiltinService(t *testing.T) {
	s := Builtin()
	require.Same(t, s, Builtin(), "parsed once")
	assert.Equal(t, "2.1.280", s.Version())
	assert.Equal(t, "claude-cli/2.1.280 (external, cli)", s.UserAgent())
	assert.Equal(t, IdentityText, s.Identity(), "constant matches the data")
	assert.Equal(t, APIVersion, s.AnthropicVersion(), "constant matches the data")
	assert.Equal(t, OAuthBetas, strings.Join(s.OAuthBetas(""), ","), "constant is the unknown-model set")
	assert.Equal(t, []string{"Read", "Write", "Edit", "Bash", "Grep", "Glob", "AskUserQuestion", "EnterPlanMode",
		"ExitPlanMode", "KillShell", "NotebookEdit", "Skill", "Task", "TaskOutput", "TodoWrite", "WebFetch", "WebSearch"},
		s.ClaudeCodeTools())
	def, err := s.Resolve(s.DefaultModel())
	require.NoError(t, err)
	assert.Equal(t, "claude-sonnet-5-5", def.ID)
	assert.False(t, def.Retired, "a default model must not be retired")
	for _, b := range s.OAuthBetas("") {
		assert.NotContains(t, b, "fine-grained-tool-streaming")
	}
}

func TestOAuthBetasPerModel(t *testing.T) {
	base := []string{"claude-code-20250219", "oauth-2025-04-20"}
	thinking := append(append([]string(nil), base...), "interleaved-thinking-2025-05-14")
	tests := []struct {
		model string
		want  []string
	}{
		{"opus", base},
		{"claude-opus-5-5", base},
		{"claude-sonnet-4-6", base},
		{"claude-haiku-4-5", thinking},
		{"claude-sonnet-4-5", thinking}, // retired: not known to think adaptively
		{"claude-future-9", thinking},
		{"", thinking},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			assert.Equal(t, tt.want, Builtin().OAuthBetas(tt.model))
		})
	}
}

// TestReferenceModelTable checks every row of anthropic-2026.md's table.
func TestReferenceModelTable(t *testing.T) {
	type row struct {
		id          string
		p           Prices
		ctx, maxOut int
	}
	p := func(in, out, w5, w1, r float64) Prices { return Prices{in, out, w5, w1, r} }
	rows := []row{
		{"claude-opus-5-5", p(4, 20, 5, 8, 0.20), 1_000_000, 128_000},
		{"claude-sonnet-5-5", p(2, 10, 2.50, 4, 0.10), 1_000_000, 128_000},
		{"claude-haiku-5-5", p(0.10, 0.50, 0.125, 0.20, 0.01), 1_000_000, 128_000},
		{"claude-fable-5-1", p(10, 50, 12.50, 20, 0.25), 1_000_000, 128_000},
		{"claude-fable-5-2", p(8, 40, 10, 16, 0.20), 1_000_000, 128_000},
		{"claude-opus-5", p(5, 25, 6.25, 10, 0.50), 1_000_000, 128_000},
		{"claude-sonnet-5", p(2, 10, 2.50, 4, 0.20), 1_000_000, 128_000},
		{"claude-opus-4-8", p(5, 25, 6.25, 10, 0.50), 1_000_000, 128_000},
		{"claude-opus-4-7", p(5, 25, 6.25, 10, 0.50), 1_000_000, 128_000},
		{"claude-opus-4-6", p(5, 25, 6.25, 10, 0.50), 1_000_000, 128_000},
		{"claude-sonnet-4-6", p(3, 15, 3.75, 6, 0.30), 1_000_000, 64_000},
		{"claude-haiku-4-5", p(1, 5, 1.25, 2, 0.10), 200_000, 64_000},
	}
	ids := map[string]bool{}
	for _, m := range Builtin().Models() {
		ids[m.ID] = true
	}
	assert.Len(t, ids, len(rows), "Models() lists exactly the current models")
	for _, r := range rows {
		t.Run(r.id, func(t *testing.T) {
			m, err := Builtin().Resolve(r.id)
			require.NoError(t, err)
			assert.True(t, m.Listed)
			assert.Equal(t, r.p, m.Prices)
			assert.Equal(t, r.ctx, m.ContextWindow)
			assert.Equal(t, r.maxOut, m.MaxOutput)
			assert.NotEmpty(t, m.DisplayName)
			assert.True(t, ids[r.id])
		})
	}
	fable, _ := Builtin().Resolve("claude-fable-5-2")
	assert.Equal(t, []string{"cache_write_1h"}, fable.Derived, "unconfirmed 1 h price is marked derived")
	assert.Equal(t, 2*fable.Prices.Input, fable.Prices.CacheWrite1h)
	haiku, _ := Builtin().Resolve("haiku")
	assert.Equal(t, []PriceTier{{100_000, p(0.50, 2.50, 0.625, 1.00, 0.05)}}, haiku.Tiers)
	opus, _ := Builtin().Resolve("opus")
	assert.Equal(t, "2.1.280", opus.MinClaudeCode)
}

// TestModelsGolden pins the model table as callers see it (go test -update).
func TestModelsGolden(t *testing.T) {
	got, err := json.MarshalIndent(Builtin().Models(), "", "  ")
	require.NoError(t, err)
	golden(t, filepath.Join("testdata", "golden", "models.json"), got)
}

// golden compares got with the file at path, rewriting it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), string(got))
}

func TestParseServiceErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "{\n  \"claude_code_version\": \"2.1.300\",\n  \"aliases\": {\"x\" 1}\n}", "line 3, column"},
		{"type", "{\n  \"claude_code_version\": 2\n}", "line 2, column"},
		{"unknown field", `{"claude_code_versoin": "2.1.300"}`, `unknown field "claude_code_versoin"`},
		{"not an object", `  ["a"]`, "line 1, column 3: not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"trailing", `{} {}`, "after the top-level object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseService([]byte(tt.in))
			require.ErrorIs(t, err, ErrServiceData)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name  string
		over  string
		check func(t *testing.T, s *Service)
	}{
		{"version only", `{"claude_code_version": "2.1.301"}`, func(t *testing.T, s *Service) {
			assert.Equal(t, "claude-cli/2.1.301 (external, cli)", s.UserAgent())
			assert.Equal(t, IdentityText, s.Identity(), "the rest is built-in")
			assert.Len(t, s.Models(), len(Builtin().Models()))
		}},
		{"one price of one model", `{"models": {"claude-fable-5-2": {"prices": {"cache_write_1h": 15}, "derived": null}}}`,
			func(t *testing.T, s *Service) {
				m, err := s.Resolve("fable")
				require.NoError(t, err)
				assert.Equal(t, Prices{8, 40, 10, 15, 0.20}, m.Prices)
				assert.Empty(t, m.Derived)
				assert.Equal(t, 1_000_000, m.ContextWindow, "other fields kept")
			}},
		{"new model, alias moved", `{"models": {"claude-opus-6": {"display_name": "Claude Opus 6", "adaptive_thinking": true,
			"prices": {"input": 3, "output": 15, "cache_write_5m": 3.75, "cache_write_1h": 6, "cache_read": 0.15}}},
			"aliases": {"opus": "claude-opus-6"}}`, func(t *testing.T, s *Service) {
			m, err := s.Resolve("opus")
			require.NoError(t, err)
			assert.Equal(t, "claude-opus-6", m.ID)
			assert.Equal(t, []string{"opus"}, m.Aliases)
			usd, ok := s.Cost("opus", Usage{InputTokens: 1e6})
			assert.True(t, ok)
			assert.InDelta(t, 3.0, usd, 1e-9)
		}},
		{"tool list and betas replaced", `{"claude_code_tools": ["Read", "Agent"], "oauth_betas": ["oauth-2025-04-20"]}`,
			func(t *testing.T, s *Service) {
				assert.Equal(t, []string{"Read", "Agent"}, s.ClaudeCodeTools())
				assert.Equal(t, "Agent", s.SentToolName("Agent"))
				assert.Equal(t, "mcp__piauth__Bash", s.SentToolName("Bash"))
				assert.Equal(t, []string{"oauth-2025-04-20"}, s.OAuthBetas("opus"))
			}},
		{"one limit", `{"limits": {"request_bytes": 1000}}`, func(t *testing.T, s *Service) {
			assert.Equal(t, Limits{ImageBase64Bytes: 5 << 20, PDFBytes: 32 << 20, RequestBytes: 1000}, s.Limits())
		}},
		{"retire a model", `{"models": {"claude-opus-4-6": null}, "retired": {"claude-opus-4-6": {"retired_on": "2027-01-05", "replacement": "claude-opus-5-5"}}}`,
			func(t *testing.T, s *Service) {
				_, err := s.Resolve("claude-opus-4-6")
				assert.EqualError(t, err, "claude-opus-4-6 was retired on 2027-01-05; use claude-opus-5-5 (alias opus)")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			over, err := ParseService([]byte(tt.over))
			require.NoError(t, err)
			s, err := Builtin().Merge(over)
			require.NoError(t, err)
			tt.check(t, s)
			assert.Equal(t, "2.1.280", Builtin().Version(), "built-in unchanged")
			assert.Len(t, Builtin().Models(), 12, "built-in unchanged")
		})
	}
}

func TestMergeRejectsInconsistentData(t *testing.T) {
	for name, over := range map[string]string{
		"alias to unknown":         `{"aliases": {"opus": "claude-opus-9"}}`,
		"default model retired":    `{"default_model": "claude-sonnet-4-5"}`,
		"replacement not current":  `{"retired": {"claude-x": {"replacement": "claude-sonnet-4-5"}}}`,
		"bad version":              `{"claude_code_version": "latest"}`,
		"negative limit":           `{"limits": {"pdf_bytes": -1}}`,
		"alias shadows a model id": `{"aliases": {"claude-opus-5": "claude-opus-5-5"}}`,
		"tiers not increasing": `{"models": {"claude-haiku-5-5": {"tiers": [{"above_prompt_tokens": 100000, "prices": {}},
			{"above_prompt_tokens": 100, "prices": {}}]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			over, err := ParseService([]byte(over))
			require.NoError(t, err)
			_, err = Builtin().Merge(over)
			assert.ErrorIs(t, err, ErrServiceData)
		})
	}
	s, err := Builtin().Merge(nil)
	require.NoError(t, err)
	assert.Same(t, Builtin(), s)
}

func TestWithVersion(t *testing.T) {
	s := Builtin().WithVersion("v2.1.333")
	assert.Equal(t, "2.1.333", s.Version())
	assert.Equal(t, "claude-cli/2.1.333 (external, cli)", s.UserAgent())
	assert.Equal(t, "2.1.280", Builtin().Version(), "a copy")
	assert.Same(t, Builtin(), Builtin().WithVersion(" "))
	assert.Same(t, Builtin(), Builtin().WithVersion("latest"), "not a version")
	assert.Equal(t, "2.1.300", Builtin().WithVersion("2.1.300 (Claude Code)\n").Version(), "claude --version output")

	over, err := ParseService([]byte(`{"aliases": {"fable": "claude-fable-5-1"}}`))
	require.NoError(t, err)
	merged, err := Builtin().Merge(over.WithVersion("2.1.400"))
	require.NoError(t, err)
	assert.Equal(t, "2.1.400", merged.Version(), "a version set on an override is merged")
	again, err := s.Merge(over)
	require.NoError(t, err)
	assert.Equal(t, "2.1.333", again.Version(), "merging keeps the base's version")
	m, _ := again.Resolve("fable")
	assert.Equal(t, "claude-fable-5-1", m.ID)
}
