package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
		{"claude-3-haiku-20240307", million, 0.25 + 1.25 + 0.025, true},
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
