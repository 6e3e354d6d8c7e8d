package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrInvalidScenario is wrapped by every scenario parse or validation error.
var ErrInvalidScenario = errors.New("invalid scenario")

// Scenario scripts the emulator. Example (testdata/scenario-example.json):
//
//	{
//	  "expires_in": 3600,
//	  "reply": {"text": "Hello from the emulator.", "deltas": 4},
//	  "unified": {"five_hour": 0.12, "seven_day": 0.31},
//	  "service": {"version_floors": {"claude-opus-5-5": "2.1.300"}},
//	  "tokens": [
//	    {"match": "sk-ant-oat01-first",
//	     "outcomes": [{"status": 429, "retry_after": 2}, {"status": 200}]},
//	    {"contains": "slow", "reply": {"event_delay_ms": 50}},
//	    {"contains": "busy", "unified": {"five_hour": 0.97, "status": "allowed_warning"},
//	     "outcomes": [{"status": 200, "midstream": true}, {"status": 529}, {"status": 200}]}
//	  ]
//	}
//
// A request's token is matched against Tokens in order: "match" compares the
// whole token, "contains" a substring; the first matching rule applies.
// Its Outcomes are consumed one per Messages request and the last one
// repeats; a rule with no outcomes answers normally. A matching rule takes
// precedence over the service's Messages markers (not over the at_auth
// markers invalid and disabled). The rule's Reply and Unified override the
// global ones field by field; its UsageReport replaces the global one.
//
// Service overrides the service facts: ParseScenario decodes the "service"
// object on top of DefaultService (objects such as version_floors and
// markers merge key by key, arrays such as models replace). Nil means
// DefaultService.
type Scenario struct {
	ExpiresIn   int          `json:"expires_in,omitempty"` // access token lifetime, seconds
	Reply       Reply        `json:"reply"`
	Unified     *Unified     `json:"unified,omitempty"`
	UsageReport *UsageReport `json:"usage_report,omitempty"` // GET /api/oauth/usage answer; nil: derived from Unified
	Service     *Service     `json:"service,omitempty"`
	Tokens      []TokenRule  `json:"tokens,omitempty"`
}

// TokenRule scripts the answers for the tokens it matches.
type TokenRule struct {
	Match    string    `json:"match,omitempty"`    // exact token
	Contains string    `json:"contains,omitempty"` // substring of the token
	Outcomes []Outcome `json:"outcomes,omitempty"`
	Reply    *Reply    `json:"reply,omitempty"`
	Unified  *Unified  `json:"unified,omitempty"`
	// UsageOutcomes script GET /api/oauth/usage like Outcomes script
	// Messages (status, retry_after, type, message, headers, delay_ms).
	UsageOutcomes []Outcome    `json:"usage_outcomes,omitempty"`
	UsageReport   *UsageReport `json:"usage_report,omitempty"`
}

// Outcome is one scripted answer to a Messages request.
type Outcome struct {
	Status     int    `json:"status"`                // 200, or an error status (429, 529, 401, 500, …)
	RetryAfter int    `json:"retry_after,omitempty"` // seconds, for errors; 429 defaults to 600
	Type       string `json:"type,omitempty"`        // error type; default from the status
	Message    string `json:"message,omitempty"`     // error message
	Midstream  bool   `json:"midstream,omitempty"`   // 200 stream cut by an overloaded error event
	// MidstreamEarly sends the overloaded error event right after
	// message_start, before any content (with Midstream: after a few deltas).
	MidstreamEarly bool `json:"midstream_early,omitempty"`
	DelayMS        int  `json:"delay_ms,omitempty"` // wait before answering
	// ErrorCode is sent as error.error_code (e.g. claude_code_version_too_old).
	ErrorCode string `json:"error_code,omitempty"`
	// NoLimitHeaders drops retry-after and the anthropic-ratelimit-* headers
	// a 429 carries by default (the identity refusal's shape).
	NoLimitHeaders bool `json:"no_limit_headers,omitempty"`
	// UnifiedResetIn sets anthropic-ratelimit-unified-reset (and -5h-reset)
	// this many seconds ahead on an error answer, e.g. a 529 naming a reset
	// hours away.
	UnifiedResetIn int `json:"unified_reset_in,omitempty"`
	// Headers are set on the answer last, verbatim (e.g. "retry-after":
	// "NaN"); an empty value removes the header.
	Headers map[string]string `json:"headers,omitempty"`
}

// Reply is the scripted assistant message. Zero fields take the defaults.
type Reply struct {
	Model            string     `json:"model,omitempty"`             // default: the request's model
	Text             string     `json:"text,omitempty"`              // default DefaultText
	Repeat           int        `json:"repeat,omitempty"`            // text repeated this many times
	Size             int        `json:"size,omitempty"`              // text length in bytes (text repeated/cut); wins over repeat
	Deltas           int        `json:"deltas,omitempty"`            // number of text deltas; default 3 (capped by length)
	NoText           bool       `json:"no_text,omitempty"`           // omit the text block (e.g. tool call only)
	Thinking         string     `json:"thinking,omitempty"`          // thinking block text
	ThinkingDeltas   int        `json:"thinking_deltas,omitempty"`   // default 3
	Signature        string     `json:"signature,omitempty"`         // default a fake signature when thinking is set
	RedactedThinking string     `json:"redacted_thinking,omitempty"` // data of a redacted_thinking block
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	EventDelayMS     int        `json:"event_delay_ms,omitempty"` // pause before each stream event
	Usage            *Usage     `json:"usage,omitempty"`
	StopReason       string     `json:"stop_reason,omitempty"` // default end_turn, or tool_use with tool calls
}

// ToolCall is a scripted tool_use block.
type ToolCall struct {
	ID     string          `json:"id,omitempty"`     // default random toolu_…
	Name   string          `json:"name,omitempty"`   // default: the request's first tool; echoed as the client spelled it
	Input  json.RawMessage `json:"input,omitempty"`  // default {}
	Chunks int             `json:"chunks,omitempty"` // input_json_delta pieces after the leading ""; default 3
}

// Usage are the reported token counts.
type Usage struct {
	InputTokens     int64 `json:"input_tokens,omitempty"`
	OutputTokens    int64 `json:"output_tokens,omitempty"` // default estimated from the content
	CacheRead       int64 `json:"cache_read_input_tokens,omitempty"`
	CacheCreation5m int64 `json:"cache_creation_5m,omitempty"`
	CacheCreation1h int64 `json:"cache_creation_1h,omitempty"`
}

// Unified are the subscription utilisation values (fractions) reported in
// the anthropic-ratelimit-unified-* headers and the usage endpoint.
type Unified struct {
	Status   string   `json:"status,omitempty"`    // allowed (default), allowed_warning, rejected, rate_limited, blocked, queueing_soft, queueing_hard, payment_required
	FiveHour *float64 `json:"five_hour,omitempty"` // default 0.12
	SevenDay *float64 `json:"seven_day,omitempty"` // default 0.31
}

// DefaultText is the reply text when none is scripted.
const DefaultText = "Hello! I am the piauth emulator."

// LoadScenario reads and parses a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario parses and validates a scenario document. Unknown fields
// are errors, so typos do not silently script nothing.
func ParseScenario(data []byte) (*Scenario, error) {
	sc := Scenario{Service: DefaultService()} // "service" decodes on top of the defaults
	if err := decodeStrict(data, &sc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	if err := sc.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidScenario, err)
	}
	return &sc, nil
}

func (sc *Scenario) validate() error {
	if sc.ExpiresIn < 0 {
		return errors.New("expires_in must not be negative")
	}
	if err := sc.Reply.validate(); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := sc.UsageReport.validate(); err != nil {
		return fmt.Errorf("usage_report: %w", err)
	}
	if sc.Service != nil {
		if _, err := sc.Service.compile(); err != nil {
			return fmt.Errorf("service: %w", err)
		}
	}
	for i, r := range sc.Tokens {
		if (r.Match == "") == (r.Contains == "") {
			return fmt.Errorf("tokens[%d]: exactly one of match and contains is required", i)
		}
		for j, o := range r.Outcomes {
			if err := o.validate(); err != nil {
				return fmt.Errorf("tokens[%d].outcomes[%d]: %w", i, j, err)
			}
		}
		for j, o := range r.UsageOutcomes {
			if err := o.validate(); err != nil {
				return fmt.Errorf("tokens[%d].usage_outcomes[%d]: %w", i, j, err)
			}
		}
		if err := r.UsageReport.validate(); err != nil {
			return fmt.Errorf("tokens[%d].usage_report: %w", i, err)
		}
		if r.Reply != nil {
			if err := r.Reply.validate(); err != nil {
				return fmt.Errorf("tokens[%d].reply: %w", i, err)
			}
		}
	}
	return nil
}

func (o *Outcome) validate() error {
	if o.Status < 200 || o.Status > 599 || (o.Status >= 201 && o.Status < 400) {
		return fmt.Errorf("status %d is not 200 or an error status", o.Status)
	}
	if (o.Midstream || o.MidstreamEarly) && o.Status != 200 {
		return errors.New("midstream needs status 200")
	}
	if o.RetryAfter < 0 || o.DelayMS < 0 || o.UnifiedResetIn < 0 {
		return errors.New("durations must not be negative")
	}
	return nil
}

func (r *Reply) validate() error {
	if r.Repeat < 0 || r.Size < 0 || r.Deltas < 0 || r.ThinkingDeltas < 0 || r.EventDelayMS < 0 {
		return errors.New("counts must not be negative")
	}
	for i, tc := range r.ToolCalls {
		if len(tc.Input) > 0 {
			var obj map[string]any
			if err := json.Unmarshal(tc.Input, &obj); err != nil {
				return fmt.Errorf("tool_calls[%d].input must be a JSON object: %w", i, err)
			}
		}
		if tc.Chunks < 0 {
			return fmt.Errorf("tool_calls[%d].chunks must not be negative", i)
		}
	}
	return nil
}

// rule returns the index of the first rule matching tok, or -1.
func (sc *Scenario) rule(tok string) int {
	for i, r := range sc.Tokens {
		if (r.Match != "" && r.Match == tok) || (r.Contains != "" && strings.Contains(tok, r.Contains)) {
			return i
		}
	}
	return -1
}

// merged returns base with the non-zero fields of over applied.
func (base Reply) merged(over *Reply) Reply {
	if over == nil {
		return base
	}
	r := base
	if over.Model != "" {
		r.Model = over.Model
	}
	if over.Text != "" {
		r.Text = over.Text
	}
	if over.Repeat != 0 {
		r.Repeat = over.Repeat
	}
	if over.Size != 0 {
		r.Size = over.Size
	}
	if over.Deltas != 0 {
		r.Deltas = over.Deltas
	}
	if over.NoText {
		r.NoText = true
	}
	if over.Thinking != "" {
		r.Thinking = over.Thinking
	}
	if over.ThinkingDeltas != 0 {
		r.ThinkingDeltas = over.ThinkingDeltas
	}
	if over.Signature != "" {
		r.Signature = over.Signature
	}
	if over.RedactedThinking != "" {
		r.RedactedThinking = over.RedactedThinking
	}
	if over.ToolCalls != nil {
		r.ToolCalls = over.ToolCalls
	}
	if over.EventDelayMS != 0 {
		r.EventDelayMS = over.EventDelayMS
	}
	if over.Usage != nil {
		r.Usage = over.Usage
	}
	if over.StopReason != "" {
		r.StopReason = over.StopReason
	}
	return r
}

func (u *Unified) merged(over *Unified) Unified {
	var r Unified
	if u != nil {
		r = *u
	}
	if over == nil {
		return r
	}
	if over.Status != "" {
		r.Status = over.Status
	}
	if over.FiveHour != nil {
		r.FiveHour = over.FiveHour
	}
	if over.SevenDay != nil {
		r.SevenDay = over.SevenDay
	}
	return r
}
