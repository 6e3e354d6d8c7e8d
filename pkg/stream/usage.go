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

// price is USD per million tokens.
type price struct {
	input, output float64
}

// Cache multipliers on the input price: write with a 5-minute TTL, write with
// a 1-hour TTL, read.
const (
	cacheWrite5mFactor = 1.25
	cacheWrite1hFactor = 2.0
	cacheReadFactor    = 0.1
	webSearchUSD       = 10.0 / 1000 // per search request
)

// priceTable returns Anthropic's published list prices per model family
// (https://www.anthropic.com/pricing, as of 2025-11). The first entry whose
// substring occurs in the model id wins, so specific families come
// before general ones. Long-context (>200k) premiums are not modelled.
func priceTable() []struct {
	match string
	p     price
} {
	return []struct {
		match string
		p     price
	}{
		{"opus-4-5", price{5, 25}},
		{"opus-4.5", price{5, 25}},
		{"opus", price{15, 75}},  // opus 4.1, 4, 3
		{"sonnet", price{3, 15}}, // sonnet 4.5, 4, 3.7, 3.5
		{"haiku-4-5", price{1, 5}},
		{"haiku-4.5", price{1, 5}},
		{"3-5-haiku", price{0.80, 4}},
		{"haiku-3-5", price{0.80, 4}},
		{"3-haiku", price{0.25, 1.25}},
	}
}

func lookupPrice(model string) (price, bool) {
	m := strings.ToLower(model)
	for _, e := range priceTable() {
		if strings.Contains(m, e.match) {
			return e.p, true
		}
	}
	return price{}, false
}

// cacheWrites returns the 5m and 1h cache-write token counts; without a split
// every cache write is billed at the 5-minute rate.
func (u Usage) cacheWrites() (w5m, w1h int64) {
	if u.CacheCreation5m+u.CacheCreation1h == 0 {
		return u.CacheCreationInputTokens, 0
	}
	return u.CacheCreation5m, u.CacheCreation1h
}

// Cost returns the USD cost of u on model. known is false for a model that
// is not in the price table.
func Cost(model string, u Usage) (usd float64, known bool) {
	p, ok := lookupPrice(model)
	if !ok {
		return 0, false
	}
	w5m, w1h := u.cacheWrites()
	mtok := float64(u.InputTokens)*p.input +
		float64(u.OutputTokens)*p.output +
		float64(w5m)*p.input*cacheWrite5mFactor +
		float64(w1h)*p.input*cacheWrite1hFactor +
		float64(u.CacheReadInputTokens)*p.input*cacheReadFactor
	return mtok/1e6 + float64(u.WebSearchRequests)*webSearchUSD, true
}

// FormatUsage renders the accounting line, e.g.
// "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0123".
// The cost is left out when the model's price is unknown.
func FormatUsage(u Usage, model string) string {
	w5m, w1h := u.cacheWrites()
	s := "in " + groupDigits(u.InputTokens) +
		" · out " + groupDigits(u.OutputTokens) +
		" · cache read " + groupDigits(u.CacheReadInputTokens) +
		" · cache write " + groupDigits(w5m+w1h)
	if usd, ok := Cost(model, u); ok {
		s += " · $" + strconv.FormatFloat(usd, 'f', 4, 64)
	}
	return s
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
