package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantID  string
		listed  bool
		retired bool
		wantErr string
	}{
		{"alias opus", "opus", "claude-opus-5-5", true, false, ""},
		{"alias sonnet", "sonnet", "claude-sonnet-5-5", true, false, ""},
		{"alias haiku", "haiku", "claude-haiku-5-5", true, false, ""},
		{"alias fable", "fable", "claude-fable-5-2", true, false, ""},
		{"alias any case", " Opus ", "claude-opus-5-5", true, false, ""},
		{"id", "claude-fable-5-1", "claude-fable-5-1", true, false, ""},
		{"id any case", "Claude-Fable-5-1", "claude-fable-5-1", true, false, ""},
		{"dated id keeps its id", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", true, false, ""},
		{"retired with date", "claude-sonnet-4-5", "claude-sonnet-4-5", true, true,
			"claude-sonnet-4-5 was retired on 2026-11-30; use claude-sonnet-5-5 (alias sonnet)"},
		{"retired dated id", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", true, true,
			"claude-sonnet-4-5-20250929 was retired on 2026-11-30; use claude-sonnet-5-5 (alias sonnet)"},
		{"retired without date", "claude-opus-4-1", "claude-opus-4-1", true, true,
			"claude-opus-4-1 is retired; use claude-opus-5-5 (alias opus)"},
		{"retired opus 4", "claude-opus-4-20250514", "claude-opus-4-20250514", true, true,
			"claude-opus-4-20250514 is retired; use claude-opus-5-5 (alias opus)"},
		{"retired sonnet 4", "claude-sonnet-4", "claude-sonnet-4", true, true,
			"claude-sonnet-4 is retired; use claude-sonnet-5-5 (alias sonnet)"},
		{"retired opus 4.5", "claude-opus-4-5", "claude-opus-4-5", true, true,
			"claude-opus-4-5 is retired; use claude-opus-5-5 (alias opus)"},
		{"claude 3 listed", "claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022", true, true,
			"claude-3-5-haiku-20241022 is retired; use claude-haiku-5-5 (alias haiku)"},
		{"claude 3 glob", "claude-3-sonnet-20240229", "claude-3-sonnet-20240229", true, true,
			"claude-3-sonnet-20240229 is retired; use claude-sonnet-5-5 (alias sonnet)"},
		{"unknown returned as is", "claude-opus-6-20270101", "claude-opus-6-20270101", false, false, ""},
		{"foreign", "gpt-5", "gpt-5", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Builtin().Resolve(tt.in)
			assert.Equal(t, tt.wantID, m.ID)
			assert.Equal(t, tt.listed, m.Listed)
			assert.Equal(t, tt.retired, m.Retired)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrRetiredModel)
			assert.EqualError(t, err, tt.wantErr)
			var re *RetiredModelError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, m.Replacement, re.Replacement)
		})
	}
	_, err := Builtin().Resolve("")
	assert.ErrorIs(t, err, ErrInvalidParams)
}

func TestModels(t *testing.T) {
	models := Builtin().Models()
	require.NotEmpty(t, models)
	aliases := map[string]string{}
	for i, m := range models {
		assert.True(t, m.Listed)
		assert.False(t, m.Retired, m.ID)
		assert.True(t, m.priced(), m.ID)
		if i > 0 {
			assert.Greater(t, models[i-1].ID, m.ID, "sorted")
		}
		for _, a := range m.Aliases {
			aliases[a] = m.ID
		}
	}
	assert.Equal(t, map[string]string{"opus": "claude-opus-5-5", "sonnet": "claude-sonnet-5-5",
		"haiku": "claude-haiku-5-5", "fable": "claude-fable-5-2"}, aliases)
}
