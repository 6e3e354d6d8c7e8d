package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	// IdentityText is the system block an OAuth request must start with.
	IdentityText = "You are Claude Code, Anthropic's official CLI for Claude."
	// ClaudeCLIVersion is the Claude Code version sent in the OAuth user-agent.
	ClaudeCLIVersion = "2.0.50"
	// APIVersion is the anthropic-version header value.
	APIVersion = "2023-06-01"
	// OAuthBetas are the betas an OAuth request carries.
	OAuthBetas = "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"
	// ToolPrefix is prepended to tool names outside Claude Code's own set.
	ToolPrefix = "mcp__piauth__"
)

// ErrBadRequestBody reports a request body that is not a Messages JSON object.
var ErrBadRequestBody = errors.New("invalid Messages request body")

// claudeCodeTool reports whether name is one of Claude Code's own tools,
// which OAuth requests may use unprefixed.
func claudeCodeTool(name string) bool {
	switch name {
	case "Read", "Write", "Edit", "Bash", "Grep", "Glob", "AskUserQuestion", "TodoWrite", "WebFetch", "WebSearch":
		return true
	}
	return false
}

// SentToolName is the name an OAuth request uses for the tool name:
// unchanged for Claude Code's tools and mcp__… names, else
// mcp__piauth__<name> with characters outside [A-Za-z0-9_-] replaced by '_'.
func SentToolName(name string) string {
	if claudeCodeTool(name) || strings.HasPrefix(name, "mcp__") {
		return name
	}
	b := []byte(ToolPrefix + name)
	for i := len(ToolPrefix); i < len(b); i++ {
		if c := b[i]; !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b[i] = '_'
		}
	}
	return string(b)
}

// object is a JSON object whose unknown fields survive a round trip.
type object map[string]json.RawMessage

func (o object) str(key string) string {
	var s string
	_ = json.Unmarshal(o[key], &s)
	return s
}

func (o object) set(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	o[key] = b
	return nil
}

// Shape rewrites a Messages request body for token. For an OAuth token the
// system prompt gets the identity block first (not duplicated) and
// client-defined tool names are mapped with SentToolName in tools[].name,
// tool_choice.name and the messages' tool_use blocks; server tools (with a
// type such as web_search_20250305) keep their names. Unknown fields are
// preserved. For an API key the body is returned unchanged.
func Shape(body []byte, token string) ([]byte, error) {
	if !IsOAuth(token) {
		return body, nil
	}
	var req object
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequestBody, errOr(err, "not an object"))
	}
	if err := shapeSystem(req); err != nil {
		return nil, err
	}
	if err := shapeTools(req); err != nil {
		return nil, err
	}
	return json.Marshal(req)
}

func shapeSystem(req object) error {
	identity := json.RawMessage(`{"type":"text","text":` + quote(IdentityText) + `,"cache_control":{"type":"ephemeral"}}`)
	var blocks []json.RawMessage
	raw := bytes.TrimSpace(req["system"])
	switch {
	case len(raw) == 0 || string(raw) == "null":
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("%w: system: %v", ErrBadRequestBody, err)
		}
		if s != "" && s != IdentityText {
			blocks = append(blocks, json.RawMessage(`{"type":"text","text":`+quote(s)+`}`))
		}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return fmt.Errorf("%w: system: %v", ErrBadRequestBody, err)
		}
		if len(blocks) > 0 {
			var first object
			if json.Unmarshal(blocks[0], &first) == nil && first.str("type") == "text" && first.str("text") == IdentityText {
				return nil // identity already first
			}
		}
	default:
		return fmt.Errorf("%w: system must be a string or an array", ErrBadRequestBody)
	}
	return req.set("system", append([]json.RawMessage{identity}, blocks...))
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// renameIn maps the "name" field of o; it reports whether o changed.
func renameIn(o object) (bool, error) {
	name := o.str("name")
	if name == "" {
		return false, nil
	}
	sent := SentToolName(name)
	if sent == name {
		return false, nil
	}
	return true, o.set("name", sent)
}

// isServerTool reports whether a tool definition is an Anthropic server tool.
func isServerTool(t object) bool {
	typ := t.str("type")
	return typ != "" && typ != "custom"
}

func shapeTools(req object) error {
	if raw, ok := req["tools"]; ok && string(raw) != "null" {
		var tools []object
		if err := json.Unmarshal(raw, &tools); err != nil {
			return fmt.Errorf("%w: tools: %v", ErrBadRequestBody, err)
		}
		for _, t := range tools {
			if isServerTool(t) {
				continue
			}
			if _, err := renameIn(t); err != nil {
				return err
			}
		}
		if err := req.set("tools", tools); err != nil {
			return err
		}
	}
	if raw, ok := req["tool_choice"]; ok {
		var tc object
		if json.Unmarshal(raw, &tc) == nil && tc.str("type") == "tool" {
			if changed, err := renameIn(tc); err != nil {
				return err
			} else if changed {
				if err := req.set("tool_choice", tc); err != nil {
					return err
				}
			}
		}
	}
	raw, ok := req["messages"]
	if !ok {
		return nil
	}
	var msgs []object
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return fmt.Errorf("%w: messages: %v", ErrBadRequestBody, err)
	}
	changedAny := false
	for _, m := range msgs {
		c := bytes.TrimSpace(m["content"])
		if len(c) == 0 || c[0] != '[' {
			continue
		}
		var blocks []object
		if err := json.Unmarshal(c, &blocks); err != nil {
			return fmt.Errorf("%w: message content: %v", ErrBadRequestBody, err)
		}
		changed := false
		for _, b := range blocks {
			if b.str("type") != "tool_use" {
				continue
			}
			ch, err := renameIn(b)
			if err != nil {
				return err
			}
			changed = changed || ch
		}
		if changed {
			changedAny = true
			if err := m.set("content", blocks); err != nil {
				return err
			}
		}
	}
	if changedAny {
		return req.set("messages", msgs)
	}
	return nil
}

// ToolNames maps the tool names Shape sent back to the caller's names.
// A nil *ToolNames maps nothing.
type ToolNames struct {
	orig map[string]string // sent → original
}

// ToolNamesFor builds the mapping for the client-defined tools in a Messages
// request body (the body before Shape). It never fails: an unreadable body
// yields an empty mapping.
func ToolNamesFor(body []byte) *ToolNames {
	m := &ToolNames{orig: map[string]string{}}
	var req struct {
		Tools []object `json:"tools"`
	}
	if json.Unmarshal(body, &req) != nil {
		return m
	}
	for _, t := range req.Tools {
		if isServerTool(t) {
			continue
		}
		if name := t.str("name"); name != "" {
			if sent := SentToolName(name); sent != name {
				m.orig[sent] = name
			}
		}
	}
	return m
}

// Original returns the caller's name for a tool name the API used. Names not
// in the mapping are returned with the mcp__piauth__ prefix removed.
func (m *ToolNames) Original(sent string) string {
	if m != nil {
		if o, ok := m.orig[sent]; ok {
			return o
		}
	}
	return strings.TrimPrefix(sent, ToolPrefix)
}

// MapEventToolName rewrites the tool name in a raw content_block_start event's
// data back to the caller's name. Data without the mcp__piauth__ prefix is
// returned as is without being parsed; unparsable data is returned unchanged.
func MapEventToolName(data []byte, m *ToolNames) []byte {
	if !bytes.Contains(data, []byte(ToolPrefix)) {
		return data
	}
	var ev object
	if json.Unmarshal(data, &ev) != nil || ev.str("type") != "content_block_start" {
		return data
	}
	var cb object
	if json.Unmarshal(ev["content_block"], &cb) != nil || !isToolBlock(cb.str("type")) {
		return data
	}
	name := cb.str("name")
	orig := m.Original(name)
	if orig == name {
		return data
	}
	if cb.set("name", orig) != nil || ev.set("content_block", cb) != nil {
		return data
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return data
	}
	return out
}

// SetAuthHeaders sets the credential and API headers for token on h. Client
// x-api-key and authorization headers are removed first. OAuth tokens get a
// Bearer authorization, the OAuth betas merged with the client's (deduped,
// without fine-grained-tool-streaming), the Claude Code user-agent and x-app;
// API keys get x-api-key. anthropic-version is set unless present;
// content-type is JSON; accept is text/event-stream when stream is true.
func SetAuthHeaders(h http.Header, token string, stream bool) {
	h.Del("x-api-key")
	h.Del("authorization")
	var betas []string
	seen := map[string]bool{}
	add := func(list string) {
		for _, b := range strings.Split(list, ",") {
			b = strings.TrimSpace(b)
			if b == "" || seen[b] || strings.HasPrefix(b, "fine-grained-tool-streaming") {
				continue
			}
			seen[b] = true
			betas = append(betas, b)
		}
	}
	if IsOAuth(token) {
		add(OAuthBetas)
		h.Set("Authorization", "Bearer "+token)
		h.Set("User-Agent", "claude-cli/"+ClaudeCLIVersion+" (external, cli)")
		h.Set("X-App", "cli")
	} else {
		h.Set("X-Api-Key", token)
	}
	for _, v := range h.Values("anthropic-beta") {
		add(v)
	}
	h.Del("anthropic-beta")
	if len(betas) > 0 {
		h.Set("Anthropic-Beta", strings.Join(betas, ","))
	}
	if h.Get("anthropic-version") == "" {
		h.Set("Anthropic-Version", APIVersion)
	}
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	}
}

// NewRequest builds POST baseURL/v1/messages with body, without credentials.
// GetBody is set so transports can replay and re-shape it.
func NewRequest(ctx context.Context, baseURL string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new messages request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// Prepare shapes req's body and sets its headers for token. It modifies req:
// a RoundTripper must call it on req.Clone(ctx), never on the request it was
// given. The original body is read through GetBody when set (so each attempt
// starts from the caller's body), else from Body.
func Prepare(req *http.Request, token string) error {
	var rc io.ReadCloser
	var err error
	switch {
	case req.GetBody != nil:
		if rc, err = req.GetBody(); err != nil {
			return fmt.Errorf("prepare request: %w", err)
		}
	case req.Body != nil:
		rc = req.Body
	default:
		rc = io.NopCloser(bytes.NewReader(nil))
	}
	body, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("prepare request: read body: %w", err)
	}
	shaped := body
	if len(body) > 0 {
		if shaped, err = Shape(body, token); err != nil {
			return fmt.Errorf("prepare request: %w", err)
		}
	}
	var flags struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &flags)
	req.Body = io.NopCloser(bytes.NewReader(shaped))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(shaped)), nil }
	req.ContentLength = int64(len(shaped))
	SetAuthHeaders(req.Header, token, flags.Stream)
	return nil
}

// TokenTransport is an http.RoundTripper that prepares every request with
// the single credential returned by Token.
type TokenTransport struct {
	Base  http.RoundTripper // nil means http.DefaultTransport
	Token func(ctx context.Context) (string, error)
}

// RoundTrip clones req, prepares the clone for the current token and sends it.
func (t *TokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("credential: %w", err)
	}
	clone := req.Clone(req.Context())
	if err := Prepare(clone, tok); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(clone)
}

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
	}{Model: p.Model, MaxTokens: p.MaxTokens, System: p.System, Messages: p.Messages, Tools: p.Tools, Stream: p.Stream}
	if p.Thinking > 0 {
		body.Thinking = &thinking{"enabled", p.Thinking}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	return b, nil
}
