package stream

import (
	"strconv"
	"strings"
)

// Usage is the token accounting of one message. Values are cumulative totals
// as the API reports them (message_delta overwrites, never adds).
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	// CacheCreation5m and CacheCreation1h split CacheCreationInputTokens by
	// cache TTL when the API reports usage.cache_creation.
	CacheCreation5m   int64 `json:"cache_creation_5m_input_tokens,omitempty"`
	CacheCreation1h   int64 `json:"cache_creation_1h_input_tokens,omitempty"`
	ThinkingTokens    int64 `json:"thinking_tokens,omitempty"`     // output_tokens_details.thinking_tokens
	WebSearchRequests int64 `json:"web_search_requests,omitempty"` // server_tool_use.web_search_requests
	WebFetchRequests  int64 `json:"web_fetch_requests,omitempty"`  // server_tool_use.web_fetch_requests
}

// cacheWrites splits the cache-write tokens by TTL: the 1-hour writes
// (usage.cache_creation.ephemeral_1h_input_tokens) and the rest of
// cache_creation_input_tokens, billed at the 5-minute rate.
func (u Usage) cacheWrites() (w5m, w1h int64) {
	total := max(u.CacheCreationInputTokens, u.CacheCreation5m+u.CacheCreation1h)
	w1h = min(max(u.CacheCreation1h, 0), total)
	return total - w1h, w1h
}

// PromptTokens is the prompt size that selects a price tier: input + cache
// writes + cache reads.
func (u Usage) PromptTokens() int64 {
	w5m, w1h := u.cacheWrites()
	return u.InputTokens + w5m + w1h + u.CacheReadInputTokens
}

// Cost returns the USD cost of u on model (an id or alias) at list prices:
// the model's own rates for input, output, 5-minute and 1-hour cache writes
// and cache reads, the price tier the prompt size selects, and web searches
// per request. Retired models with known prices are priced. known is false
// for a model without prices in the table.
func (s *Service) Cost(model string, u Usage) (usd float64, known bool) {
	m, _ := s.Resolve(model) // a retired model still has its prices
	if !m.priced() {
		return 0, false
	}
	p := m.PricesFor(u.PromptTokens())
	w5m, w1h := u.cacheWrites()
	mtok := float64(u.InputTokens)*p.Input +
		float64(u.OutputTokens)*p.Output +
		float64(w5m)*p.CacheWrite5m +
		float64(w1h)*p.CacheWrite1h +
		float64(u.CacheReadInputTokens)*p.CacheRead
	return mtok/1e6 + float64(u.WebSearchRequests)*s.d.WebSearchPer1000/1000, true
}

// Cost is Builtin().Cost.
func Cost(model string, u Usage) (usd float64, known bool) { return Builtin().Cost(model, u) }

// FormatUsage is Builtin().FormatUsage.
func FormatUsage(u Usage, model string) string { return Builtin().FormatUsage(u, model) }

// FormatUsage renders the accounting line, e.g.
// "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0123".
// The cost is left out when the model's price is unknown.
func (s *Service) FormatUsage(u Usage, model string) string {
	w5m, w1h := u.cacheWrites()
	line := "in " + groupDigits(u.InputTokens) +
		" · out " + groupDigits(u.OutputTokens) +
		" · cache read " + groupDigits(u.CacheReadInputTokens) +
		" · cache write " + groupDigits(w5m+w1h)
	if usd, ok := s.Cost(model, u); ok {
		line += " · $" + strconv.FormatFloat(usd, 'f', 4, 64)
	}
	return line
}

// groupDigits formats n with comma thousands separators.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
