package stream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// maxToolName is the API's limit on tool names (^[a-zA-Z0-9_-]{1,128}$).
const maxToolName = 128

// validToolName reports whether name matches ^[a-zA-Z0-9_-]{1,128}$.
func validToolName(name string) bool {
	if name == "" || len(name) > maxToolName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !toolNameByte(name[i]) {
			return false
		}
	}
	return true
}

func toolNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// keptToolName reports whether an OAuth request may send name unchanged:
// one of Claude Code's own tools (exact case), or an mcp__server__tool name
// that is a valid tool name. Everything else (mcp_read, todowrite, foreign
// names) is what the classifier refuses.
func (s *Service) keptToolName(name string) bool {
	return s.tools[name] || strings.HasPrefix(name, "mcp__") && validToolName(name)
}

// SentToolName returns the name an OAuth request uses for the tool name:
// unchanged when keptToolName, else ToolPrefix + name with characters
// outside [A-Za-z0-9_-] replaced by '_', shortened to 128 characters by
// hashedToolName when longer. Within one request ToolNamesFor and Shape also
// resolve collisions (two names that sanitise alike).
func (s *Service) SentToolName(name string) string {
	if name == "" || s.keptToolName(name) {
		return name
	}
	sent := sanitizedToolName(name)
	if len(sent) > maxToolName {
		return hashedToolName(name)
	}
	return sent
}

// SentToolName is Builtin().SentToolName.
func SentToolName(name string) string { return Builtin().SentToolName(name) }

func sanitizedToolName(name string) string {
	b := []byte(ToolPrefix + name)
	for i := len(ToolPrefix); i < len(b); i++ {
		if !toolNameByte(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

// hashedToolName is the collision-free form of a mapped name:
// ToolPrefix + the sanitised name cut to fit + "_" + the first 8 hex digits
// of sha256(name), at most 128 characters.
func hashedToolName(name string) string {
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:4])
	s := sanitizedToolName(name)
	if keep := maxToolName - len(suffix); len(s) > keep {
		s = s[:keep]
	}
	return s + suffix
}

// ToolNames maps the tool names Shape sent back to the caller's names.
// A nil *ToolNames maps nothing but strips ToolPrefix.
type ToolNames struct {
	orig     map[string]string // sent → original
	sent     map[string]string // original → sent
	verbatim bool              // pass-through request: nothing was renamed
}

// ToolNamesFor builds the mapping for the client-defined tools in a Messages
// request body (the body before Shape). For a request Shape passes through
// (it already carries Claude Code's identity) the mapping maps nothing. It
// never fails: an unreadable body yields an empty mapping.
func (s *Service) ToolNamesFor(body []byte) *ToolNames {
	var req struct {
		System json.RawMessage `json:"system"`
		Tools  json.RawMessage `json:"tools"`
	}
	if json.Unmarshal(body, &req) != nil {
		return &ToolNames{}
	}
	if s.passThrough(req.System) {
		return &ToolNames{verbatim: true}
	}
	var tools []object
	_ = json.Unmarshal(req.Tools, &tools)
	return s.toolNames(tools)
}

// ToolNamesFor is Builtin().ToolNamesFor.
func ToolNamesFor(body []byte) *ToolNames { return Builtin().ToolNamesFor(body) }

// toolNames maps the client tools of one request. Kept names are reserved
// first; a mapped name that collides with a reserved or earlier one takes
// the hashed form, so that Original maps back exactly.
func (s *Service) toolNames(tools []object) *ToolNames {
	m := &ToolNames{orig: map[string]string{}, sent: map[string]string{}}
	used := map[string]bool{}
	var names []string
	for _, t := range tools {
		if isServerTool(t) {
			continue
		}
		name := t.str("name")
		if name == "" {
			continue
		}
		if s.keptToolName(name) {
			used[name] = true
			if strings.HasPrefix(name, ToolPrefix) {
				m.orig[name] = name // not to be stripped on the way back
			}
			continue
		}
		names = append(names, name)
	}
	for _, name := range names {
		if _, done := m.sent[name]; done {
			continue
		}
		sent := s.SentToolName(name)
		if used[sent] {
			sent = hashedToolName(name)
		}
		used[sent] = true
		m.sent[name], m.orig[sent] = sent, name
	}
	return m
}

// sentName is the name to send for a tool name of this request.
func (m *ToolNames) sentName(s *Service, name string) string {
	if sent, ok := m.sent[name]; ok {
		return sent
	}
	return s.SentToolName(name)
}

// Original returns the caller's name for a tool name the API used. Names not
// in the mapping are returned with the mcp__piauth__ prefix removed, except
// for a pass-through request's mapping, which returns every name as is.
func (m *ToolNames) Original(sent string) string {
	if m != nil {
		if m.verbatim {
			return sent
		}
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
	if m != nil && m.verbatim || !bytes.Contains(data, []byte(ToolPrefix)) {
		return data
	}
	var ev object
	if json.Unmarshal(data, &ev) != nil || ev.str("type") != "content_block_start" {
		return data
	}
	var cb object
	if json.Unmarshal(ev["content_block"], &cb) != nil || !m.renameBack(cb) || ev.set("content_block", cb) != nil {
		return data
	}
	return marshalPlain(ev, data)
}

// MapMessageToolNames rewrites the tool names of a whole (non-streamed)
// message's tool_use blocks back to the caller's names, as MapEventToolName
// does for a stream. Data without the prefix is returned as is without being
// parsed; unparsable data is returned unchanged.
func MapMessageToolNames(data []byte, m *ToolNames) []byte {
	if m != nil && m.verbatim || !bytes.Contains(data, []byte(ToolPrefix)) {
		return data
	}
	var msg object
	var content []object
	if json.Unmarshal(data, &msg) != nil || json.Unmarshal(msg["content"], &content) != nil {
		return data
	}
	changed := false
	for _, b := range content {
		changed = m.renameBack(b) || changed
	}
	if !changed {
		return data
	}
	msg["content"] = marshalPlain(content, msg["content"])
	return marshalPlain(msg, data)
}

// renameBack sets a tool block's name back to the caller's; it reports
// whether the block changed.
func (m *ToolNames) renameBack(b object) bool {
	if !isToolBlock(b.str("type")) {
		return false
	}
	name := b.str("name")
	orig := m.Original(name)
	return orig != name && b.set("name", orig) == nil
}

// marshalPlain encodes v as the API does (no HTML escaping), or returns
// fallback when it cannot.
func marshalPlain(v any, fallback []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return fallback
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// isServerTool reports whether a tool definition is an Anthropic server tool.
func isServerTool(t object) bool {
	typ := t.str("type")
	return typ != "" && typ != "custom"
}
