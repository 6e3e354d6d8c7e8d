package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCost(t *testing.T) {
	million := Usage{InputTokens: 1e6, OutputTokens: 1e6, CacheReadInputTokens: 1e6}
	tests := []struct {
		model string
		u     Usage
		want  float64
		known bool
	}{
		{"claude-opus-4-5-20251101", million, 5 + 25 + 0.5, true},
		{"claude-opus-4-1-20250805", million, 15 + 75 + 1.5, true},
		{"claude-sonnet-4-5-20250929", million, 3 + 15 + 0.3, true},
		{"claude-3-7-sonnet-20250219", million, 3 + 15 + 0.3, true},
		{"claude-haiku-4-5", million, 1 + 5 + 0.1, true},
		{"claude-3-5-haiku-20241022", million, 0.8 + 4 + 0.08, true},
		{"claude-3-haiku-20240307", million, 0.25 + 1.25 + 0.03, true}, // published cache read $0.03, not 0.1× input
		{"claude-sonnet-4-5", Usage{CacheCreationInputTokens: 1e6}, 3 * 1.25, true},
		{"claude-sonnet-4-5", Usage{CacheCreationInputTokens: 3e6, CacheCreation5m: 1e6, CacheCreation1h: 2e6}, 3*1.25 + 2*3*2, true},
		{"claude-sonnet-4-5", Usage{WebSearchRequests: 3}, 0.03, true},
		{"gpt-5", million, 0, false},
		{"", million, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			got, known := Cost(tt.model, tt.u)
			assert.Equal(t, tt.known, known)
			assert.InDelta(t, tt.want, got, 1e-9)
		})
	}
}

func TestFormatUsage(t *testing.T) {
	u := Usage{InputTokens: 1234, OutputTokens: 567, CacheReadInputTokens: 2048}
	assert.Equal(t, "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0128", FormatUsage(u, "claude-sonnet-4-5"))
	assert.Equal(t, "in 1,234 · out 567 · cache read 2,048 · cache write 0", FormatUsage(u, "mystery"))
	assert.Equal(t, "in 1,234,567 · out 0 · cache read 0 · cache write 100", FormatUsage(Usage{InputTokens: 1234567, CacheCreationInputTokens: 100}, ""))
	assert.Equal(t, "-1,000", groupDigits(-1000))
	assert.Equal(t, "100", groupDigits(100))
}

// TestCostOpus55ByHand prices one realistic usage on claude-opus-5-5 with the
// arithmetic written out (list prices 4 / 20 / 5 / 8 / 0.20 per MTok).
func TestCostOpus55ByHand(t *testing.T) {
	u := Usage{
		InputTokens: 12_345, OutputTokens: 6_789,
		CacheCreationInputTokens: 50_000, CacheCreation5m: 30_000, CacheCreation1h: 20_000,
		CacheReadInputTokens: 100_000, WebSearchRequests: 3,
	}
	want := (12_345*4.0 + // input: 49,380
		6_789*20.0 + // output: 135,780
		30_000*5.0 + // 5 min cache writes: 150,000
		20_000*8.0 + // 1 h cache writes: 160,000 (not 20,000 × 5)
		100_000*0.20) / 1e6 // cache reads: 20,000 → 515,160 / 1e6 = 0.51516
	want += 3 * 10.0 / 1000 // web search, $10 per 1,000: 0.03
	require.InDelta(t, 0.54516, want, 1e-12, "the hand arithmetic")
	got, known := Cost("claude-opus-5-5", u)
	assert.True(t, known)
	assert.InDelta(t, want, got, 1e-12)
	alias, _ := Cost("opus", u)
	assert.InDelta(t, want, alias, 1e-12, "aliases price the same")
}

func TestCost2026(t *testing.T) {
	tests := []struct {
		name  string
		model string
		u     Usage
		want  float64
	}{
		{"1h writes at the 1h price", "claude-sonnet-5-5", Usage{CacheCreationInputTokens: 1e6, CacheCreation1h: 1e6}, 4},
		{"rest of cache_creation at 5m", "claude-sonnet-5-5", Usage{CacheCreationInputTokens: 1e6, CacheCreation1h: 4e5}, 0.6*2.5 + 0.4*4},
		{"no split: all 5m", "claude-sonnet-5-5", Usage{CacheCreationInputTokens: 1e6}, 2.5},
		{"per-model cache read", "claude-sonnet-5", Usage{CacheReadInputTokens: 1e6}, 0.20},
		{"fable 5.2 derived 1h", "fable", Usage{CacheCreationInputTokens: 1e6, CacheCreation1h: 1e6}, 16},
		{"haiku 5.5 prompt at 100K: low tier", "haiku",
			Usage{InputTokens: 60_000, CacheReadInputTokens: 40_000, OutputTokens: 1_000},
			(60_000*0.10 + 40_000*0.01 + 1_000*0.50) / 1e6},
		{"haiku 5.5 prompt above 100K: high tier for all tokens", "claude-haiku-5-5",
			Usage{InputTokens: 60_000, CacheReadInputTokens: 40_000, CacheCreationInputTokens: 1, OutputTokens: 1_000},
			(60_000*0.50 + 40_000*0.05 + 1*0.625 + 1_000*2.50) / 1e6},
		{"retired model still priced", "claude-sonnet-4-5-20250929", Usage{InputTokens: 1e6}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known := Cost(tt.model, tt.u)
			assert.True(t, known)
			assert.InDelta(t, tt.want, got, 1e-12)
		})
	}
	_, known := Cost("claude-3-sonnet-20240229", Usage{InputTokens: 1})
	assert.False(t, known, "retired by the claude-3-* entry, which has no prices")
}

func TestFormatUsage2026(t *testing.T) {
	u := Usage{InputTokens: 10_000, OutputTokens: 2_000, CacheCreationInputTokens: 1_000, CacheCreation1h: 1_000}
	// opus 5.5: 10,000×4 + 2,000×20 + 1,000×8 = 88,000 / 1e6 = 0.088
	assert.Equal(t, "in 10,000 · out 2,000 · cache read 0 · cache write 1,000 · $0.0880", FormatUsage(u, "opus"))
	svc := Builtin().WithVersion("2.1.300")
	assert.Equal(t, FormatUsage(u, "opus"), svc.FormatUsage(u, "claude-opus-5-5"))
}
