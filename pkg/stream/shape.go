package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// IdentityText is the built-in identity: the system text an OAuth
	// request must start with (Service.Identity is authoritative).
	IdentityText = "You are Claude Code, Anthropic's official CLI for Claude."
	// APIVersion is the built-in anthropic-version header value
	// (Service.AnthropicVersion is authoritative).
	APIVersion = "2023-06-01"
	// OAuthBetas are the built-in betas of an OAuth request whose model is
	// unknown or thinks without adaptive thinking (Service.OAuthBetas gives
	// them per model).
	OAuthBetas = "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"
	// ToolPrefix is prepended to tool names outside Claude Code's own set.
	// It is piauth's own MCP server name, not service data.
	ToolPrefix = "mcp__piauth__"
)

// ErrBadRequestBody reports a request body that is not a Messages JSON object.
var ErrBadRequestBody = errors.New("invalid Messages request body")

// object is a JSON object whose unknown fields survive a round trip.
type object map[string]json.RawMessage

// str returns the string field key ("" when absent or not a string). A
// plain string (no escapes, valid UTF-8) is sliced without a JSON decode.
func (o object) str(key string) string {
	raw := o[key]
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		if in := raw[1 : n-1]; bytes.IndexByte(in, '\\') < 0 && bytes.IndexByte(in, '"') < 0 && utf8.Valid(in) {
			return string(in)
		}
	}
	var s string
	_ = json.Unmarshal(raw, &s)
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

// hasCacheControl reports whether a block carries a non-null cache_control.
func (o object) hasCacheControl() bool {
	raw, ok := o["cache_control"]
	return ok && string(bytes.TrimSpace(raw)) != "null"
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Shape is Builtin().Shape.
func Shape(body []byte, token string) ([]byte, error) { return Builtin().Shape(body, token) }

// Shape rewrites a Messages request body for token.
//
// For an API key the body is returned unchanged. So is a request that
// already carries Claude Code's identity (system[0] is the identity text, or
// system[0] is an x-anthropic-billing-header block and system[1] the
// identity): a real Claude Code client's body passes byte for byte.
//
// Otherwise the system prompt gets the identity block first, with
// cache_control unless the request already has the maximum (4) cache_control
// blocks in system, tools and messages; and client-defined tool names are
// mapped (see ToolNamesFor) in tools[].name, tool_choice.name and the
// messages' tool_use blocks. Server tools (with a type such as
// web_search_20250305) keep their names; unknown fields are preserved.
func (s *Service) Shape(body []byte, token string) ([]byte, error) {
	if !IsOAuth(token) {
		return body, nil
	}
	var req object
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequestBody, errOr(err, "not an object"))
	}
	if s.passThrough(req["system"]) {
		return body, nil
	}
	system, systemObjs, err := s.systemBlocks(req["system"])
	if err != nil {
		return nil, err
	}
	var tools []object
	if raw, ok := req["tools"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &tools); err != nil {
			return nil, fmt.Errorf("%w: tools: %v", ErrBadRequestBody, err)
		}
	}
	msgs, err := decodeMessages(req)
	if err != nil {
		return nil, err
	}
	cached := countCacheControl(systemObjs, tools, msgs)
	if err := s.setSystem(req, system, cached < s.maxCacheControl()); err != nil {
		return nil, err
	}
	if err := s.mapTools(req, tools, msgs); err != nil {
		return nil, err
	}
	return json.Marshal(req)
}

// passThrough reports whether a request whose system field is raw already
// carries Claude Code's identity.
func (s *Service) passThrough(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return false
	}
	// Element by element: a later element that is not an object (which
	// the API refuses anyway) must not hide an identity already in front.
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil || len(blocks) == 0 {
		return false
	}
	text := func(i int) (string, bool) {
		var b object
		if i >= len(blocks) || json.Unmarshal(blocks[i], &b) != nil || b.str("type") != "text" {
			return "", false
		}
		return b.str("text"), true
	}
	first, ok := text(0)
	switch {
	case !ok:
		return false
	case first == s.d.Identity:
		return true
	case s.d.BillingHeaderPrefix != "" && strings.HasPrefix(first, s.d.BillingHeaderPrefix):
		second, ok := text(1)
		return ok && second == s.d.Identity
	}
	return false
}

// systemBlocks decodes system (absent, a string or an array) into its
// blocks, as sent (raw) and parsed.
func (s *Service) systemBlocks(raw json.RawMessage) ([]json.RawMessage, []object, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, nil, nil
	case raw[0] == '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, nil, fmt.Errorf("%w: system: %v", ErrBadRequestBody, err)
		}
		if text == "" || text == s.d.Identity { // the identity is not duplicated
			return nil, nil, nil
		}
		return []json.RawMessage{json.RawMessage(`{"type":"text","text":` + quote(text) + `}`)}, nil, nil
	case raw[0] == '[':
		var blocks []json.RawMessage
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return nil, nil, fmt.Errorf("%w: system: %v", ErrBadRequestBody, err)
		}
		objs := make([]object, len(blocks))
		for i, b := range blocks {
			_ = json.Unmarshal(b, &objs[i]) // a non-object block has no cache_control
		}
		return blocks, objs, nil
	}
	return nil, nil, fmt.Errorf("%w: system must be a string or an array", ErrBadRequestBody)
}

// setSystem writes system with the identity block first, with
// cache_control when cache is true.
func (s *Service) setSystem(req object, system []json.RawMessage, cache bool) error {
	identity := `{"type":"text","text":` + quote(s.d.Identity)
	if cache {
		identity += `,"cache_control":{"type":"ephemeral"}`
	}
	blocks := make([]json.RawMessage, 0, len(system)+1)
	blocks = append(blocks, json.RawMessage(identity+"}"))
	return req.set("system", append(blocks, system...))
}

// message is one decoded message with its content blocks (nil when the
// content is a string).
type message struct {
	obj    object
	blocks []object
}

func decodeMessages(req object) ([]message, error) {
	raw, ok := req["messages"]
	if !ok {
		return nil, nil
	}
	var objs []object
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, fmt.Errorf("%w: messages: %v", ErrBadRequestBody, err)
	}
	msgs := make([]message, len(objs))
	for i, m := range objs {
		msgs[i].obj = m
		c := bytes.TrimSpace(m["content"])
		if len(c) == 0 || c[0] != '[' {
			continue
		}
		if err := json.Unmarshal(c, &msgs[i].blocks); err != nil {
			return nil, fmt.Errorf("%w: message content: %v", ErrBadRequestBody, err)
		}
	}
	return msgs, nil
}

// countCacheControl counts the blocks with cache_control in system, tools
// and messages, including blocks nested in tool_result content (counting
// too many only costs the identity block its cache_control; too few costs a
// 400).
func countCacheControl(system, tools []object, msgs []message) int {
	n := 0
	count := func(blocks []object) {
		for _, b := range blocks {
			if b.hasCacheControl() {
				n++
			}
		}
	}
	count(system)
	count(tools)
	for _, m := range msgs {
		count(m.blocks)
		for _, b := range m.blocks {
			if c := bytes.TrimSpace(b["content"]); len(c) > 0 && c[0] == '[' {
				var nested []object
				if json.Unmarshal(c, &nested) == nil {
					count(nested)
				}
			}
		}
	}
	return n
}

// renameIn maps the "name" field of o; it reports whether o changed.
func (s *Service) renameIn(o object, names *ToolNames) (bool, error) {
	name := o.str("name")
	if name == "" {
		return false, nil
	}
	sent := names.sentName(s, name)
	if sent == name {
		return false, nil
	}
	return true, o.set("name", sent)
}

// mapTools renames client tools in tools, tool_choice and tool_use blocks.
func (s *Service) mapTools(req object, tools []object, msgs []message) error {
	names := s.toolNames(tools)
	if tools != nil {
		for _, t := range tools {
			if isServerTool(t) {
				continue
			}
			if _, err := s.renameIn(t, names); err != nil {
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
			if changed, err := s.renameIn(tc, names); err != nil {
				return err
			} else if changed {
				if err := req.set("tool_choice", tc); err != nil {
					return err
				}
			}
		}
	}
	changedAny := false
	for _, m := range msgs {
		changed := false
		for _, b := range m.blocks {
			if b.str("type") != "tool_use" {
				continue
			}
			ch, err := s.renameIn(b, names)
			if err != nil {
				return err
			}
			changed = changed || ch
		}
		if changed {
			changedAny = true
			if err := m.obj.set("content", m.blocks); err != nil {
				return err
			}
		}
	}
	if !changedAny {
		return nil
	}
	objs := make([]object, len(msgs))
	for i, m := range msgs {
		objs[i] = m.obj
	}
	return req.set("messages", objs)
}
