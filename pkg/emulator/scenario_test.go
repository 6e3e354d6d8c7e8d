package emulator

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadScenarioExample(t *testing.T) {
	sc, err := LoadScenario(filepath.Join("testdata", "scenario-example.json"))
	require.NoError(t, err)
	assert.Equal(t, 3600, sc.ExpiresIn)
	assert.Equal(t, "Hello from the emulator.", sc.Reply.Text)
	require.Len(t, sc.Tokens, 6)
	assert.Equal(t, []Outcome{{Status: 429, RetryAfter: 2}, {Status: 200}}, sc.Tokens[0].Outcomes)
	assert.Equal(t, 0, sc.rule("sk-ant-oat01-first"))
	assert.Equal(t, 1, sc.rule("sk-ant-oat01-very-slow"))
	assert.Equal(t, -1, sc.rule("sk-ant-oat01-first-but-longer"))
	assert.Equal(t, 3600, New(Options{Scenario: sc}).opts.ExpiresIn)
	assert.Equal(t, 99, New(Options{Scenario: sc, ExpiresIn: 99}).opts.ExpiresIn)
	assert.Equal(t, 5, sc.rule("sk-ant-oat01-usage-limited"))
	assert.Equal(t, 120, sc.Tokens[5].UsageOutcomes[0].RetryAfter)
	assert.Equal(t, "NaN", sc.Tokens[4].Outcomes[0].Headers["retry-after"])
}

func TestParseScenarioErrors(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"not json", `{`},
		{"unknown field", `{"replies": {}}`},
		{"rule without matcher", `{"tokens": [{"outcomes": [{"status": 200}]}]}`},
		{"rule with both matchers", `{"tokens": [{"match": "a", "contains": "b"}]}`},
		{"redirect status", `{"tokens": [{"match": "a", "outcomes": [{"status": 302}]}]}`},
		{"zero status", `{"tokens": [{"match": "a", "outcomes": [{"retry_after": 3}]}]}`},
		{"midstream on error", `{"tokens": [{"match": "a", "outcomes": [{"status": 529, "midstream": true}]}]}`},
		{"negative deltas", `{"reply": {"deltas": -1}}`},
		{"tool input not object", `{"reply": {"tool_calls": [{"name": "Read", "input": [1]}]}}`},
		{"negative expires", `{"expires_in": -5}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tt.doc))
			assert.ErrorIs(t, err, ErrInvalidScenario)
		})
	}
	_, err := LoadScenario(filepath.Join("testdata", "missing.json"))
	assert.True(t, errors.Is(err, fs.ErrNotExist))
}

func TestReplyMerge(t *testing.T) {
	base := Reply{Text: "base", Deltas: 2, StopReason: "max_tokens"}
	got := base.merged(&Reply{Text: "over", EventDelayMS: 5})
	assert.Equal(t, Reply{Text: "over", Deltas: 2, StopReason: "max_tokens", EventDelayMS: 5}, got)
	assert.Equal(t, base, base.merged(nil))
}
