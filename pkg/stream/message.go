package stream

// The message a stream accumulates to, as callers see it.

import "encoding/json"

// Block is one content block of a message.
type Block struct {
	Type      string            // text, thinking, redacted_thinking, tool_use, server_tool_use, or another type
	Text      string            // text
	Citations []json.RawMessage // text: citations_delta citations, in order
	Thinking  string            // thinking
	Signature string            // thinking
	Data      string            // redacted_thinking
	ID        string            // tool_use, server_tool_use
	Name      string            // tool_use, server_tool_use (mapped back when Accumulator.Tools is set)
	Input     json.RawMessage   // tool_use, server_tool_use: parsed-valid JSON
	// Raw is content_block_start's content_block for other block types
	// (web_search_tool_result…), kept exactly as received.
	Raw json.RawMessage
}

// MarshalJSON renders the block in the API's shape: only the fields of its type.
func (b Block) MarshalJSON() ([]byte, error) {
	switch b.Type {
	case "text":
		return json.Marshal(struct {
			Type      string            `json:"type"`
			Text      string            `json:"text"`
			Citations []json.RawMessage `json:"citations,omitempty"`
		}{b.Type, b.Text, b.Citations})
	case "thinking":
		return json.Marshal(struct {
			Type      string `json:"type"`
			Thinking  string `json:"thinking"`
			Signature string `json:"signature"`
		}{b.Type, b.Thinking, b.Signature})
	case "redacted_thinking":
		return json.Marshal(struct {
			Type string `json:"type"`
			Data string `json:"data"`
		}{b.Type, b.Data})
	case "tool_use", "server_tool_use":
		in := b.Input
		if len(in) == 0 {
			in = json.RawMessage("{}")
		}
		return json.Marshal(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{b.Type, b.ID, b.Name, in})
	}
	if len(b.Raw) == 0 {
		return json.Marshal(struct {
			Type string `json:"type"`
		}{b.Type})
	}
	return b.Raw, nil
}

// Message is the final (or partial) assistant message built from a stream.
// Its JSON form is {id, model, content, stop_reason, stop_sequence, usage}.
type Message struct {
	ID           string  `json:"id,omitempty"`
	Model        string  `json:"model,omitempty"`
	Content      []Block `json:"content"`
	StopReason   string  `json:"stop_reason"`
	StopSequence string  `json:"stop_sequence,omitempty"`
	Usage        Usage   `json:"usage"`
}

// Delta is what one event contributed, for incremental display. Byte slices
// are valid until the next Add and must not be modified.
type Delta struct {
	Index    int    // content block index, for block events
	Text     []byte // text_delta
	Thinking []byte // thinking_delta
	// ToolUse is a tool_use or server_tool_use block completed by
	// content_block_stop, with its Input parsed.
	ToolUse *Block
	// Usage is set when message_start or message_delta updated the usage.
	Usage *Usage
	// StopReason is set by message_delta.
	StopReason string
	// Done is true for message_stop.
	Done bool
}
