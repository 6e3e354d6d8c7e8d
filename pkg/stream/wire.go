package stream

import "encoding/json"

// The events' shapes on the wire, decoded with encoding/json on the
// accumulator's general path (the fast path handles compact string deltas).

// Wire shapes of the events, decoded with encoding/json on the general path.
type (
	wireUsage struct {
		InputTokens              *int64 `json:"input_tokens"`
		OutputTokens             *int64 `json:"output_tokens"`
		CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
		CacheCreation            *struct {
			Ephemeral5m *int64 `json:"ephemeral_5m_input_tokens"`
			Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
		} `json:"cache_creation"`
		OutputTokensDetails *struct {
			ThinkingTokens *int64 `json:"thinking_tokens"`
		} `json:"output_tokens_details"`
		ServerToolUse *struct {
			WebSearchRequests *int64 `json:"web_search_requests"`
			WebFetchRequests  *int64 `json:"web_fetch_requests"`
		} `json:"server_tool_use"`
	}
	wireEvent struct {
		Type    string `json:"type"`
		Index   *int   `json:"index"`
		Message *struct {
			ID    string     `json:"id"`
			Model string     `json:"model"`
			Usage *wireUsage `json:"usage"`
		} `json:"message"`
		ContentBlock json.RawMessage `json:"content_block"`
		Delta        *struct {
			Type         string          `json:"type"`
			Text         string          `json:"text"`
			Thinking     string          `json:"thinking"`
			Signature    string          `json:"signature"`
			PartialJSON  string          `json:"partial_json"`
			Citation     json.RawMessage `json:"citation"`
			StopReason   *string         `json:"stop_reason"`
			StopSequence *string         `json:"stop_sequence"`
		} `json:"delta"`
		Usage *wireUsage `json:"usage"`
		Error *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	wireBlock struct {
		Type      string            `json:"type"`
		Text      string            `json:"text"`
		Thinking  string            `json:"thinking"`
		Signature string            `json:"signature"`
		Data      string            `json:"data"`
		ID        string            `json:"id"`
		Name      string            `json:"name"`
		Input     json.RawMessage   `json:"input"`
		Citations []json.RawMessage `json:"citations"`
	}
)
