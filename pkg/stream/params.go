package stream

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidParams reports Params that cannot form a valid request.
var ErrInvalidParams = errors.New("invalid request parameters")

// Params are the parts of a Messages request that chat sets.
type Params struct {
	Model     string
	System    string            // optional system prompt
	MaxTokens int               // required, > 0
	Thinking  int               // thinking budget in tokens; 0 disables (else ≥ 1024 and < MaxTokens)
	Messages  []json.RawMessage // {"role":…, "content":…} objects
	Tools     json.RawMessage   // optional JSON array of tool definitions
	Stream    bool
	// Sampling, sent only when set: temperature and top_p (0–1), and the
	// stop sequences.
	Temperature   *float64
	TopP          *float64
	StopSequences []string
}

// UserMessage returns a user turn with plain text content.
func UserMessage(text string) json.RawMessage {
	return json.RawMessage(`{"role":"user","content":` + quote(text) + `}`)
}

// Body renders p as a Messages request body (not yet shaped for a token).
func (p Params) Body() ([]byte, error) {
	switch {
	case p.Model == "":
		return nil, fmt.Errorf("%w: model is required", ErrInvalidParams)
	case p.MaxTokens <= 0:
		return nil, fmt.Errorf("%w: max_tokens must be positive", ErrInvalidParams)
	case p.Thinking != 0 && (p.Thinking < 1024 || p.Thinking >= p.MaxTokens):
		return nil, fmt.Errorf("%w: thinking budget %d must be ≥ 1024 and < max_tokens %d", ErrInvalidParams, p.Thinking, p.MaxTokens)
	case len(p.Messages) == 0:
		return nil, fmt.Errorf("%w: no messages", ErrInvalidParams)
	}
	type thinking struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	}
	body := struct {
		Model     string            `json:"model"`
		MaxTokens int               `json:"max_tokens"`
		System    string            `json:"system,omitempty"`
		Messages  []json.RawMessage `json:"messages"`
		Tools     json.RawMessage   `json:"tools,omitempty"`
		Thinking  *thinking         `json:"thinking,omitempty"`
		Stream    bool              `json:"stream,omitempty"`
		Temp      *float64          `json:"temperature,omitempty"`
		TopP      *float64          `json:"top_p,omitempty"`
		Stop      []string          `json:"stop_sequences,omitempty"`
	}{Model: p.Model, MaxTokens: p.MaxTokens, System: p.System, Messages: p.Messages, Tools: p.Tools, Stream: p.Stream,
		Temp: p.Temperature, TopP: p.TopP, Stop: p.StopSequences}
	if p.Thinking > 0 {
		body.Thinking = &thinking{"enabled", p.Thinking}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	return b, nil
}
