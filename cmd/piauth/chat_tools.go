package main

import (
	"bytes"
	"encoding/json"
	"os"

	"github.com/piauth/piauth/pkg/stream"
)

// loadTools reads and validates --tools FILE: a JSON array of tool
// definitions, each with a name and, for client tools, an input_schema
// object (server tools, which have a type such as web_search_20250305, need
// only a name). It returns the compacted array, or nil without a file.
func loadTools(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--tools: %w", err)
	}
	var defs []map[string]json.RawMessage
	if err := json.Unmarshal(data, &defs); err != nil {
		return nil, usagef("--tools %s: not a JSON array of tool definitions: %w", path, err)
	}
	if len(defs) == 0 {
		return nil, usagef("--tools %s: the array holds no tools", path)
	}
	for i, d := range defs {
		var name, typ string
		if json.Unmarshal(d["name"], &name) != nil || name == "" {
			return nil, usagef("--tools %s: tool %d has no name", path, i+1)
		}
		_ = json.Unmarshal(d["type"], &typ)
		schema := bytes.TrimSpace(d["input_schema"])
		if (typ == "" || typ == "custom") && (len(schema) == 0 || schema[0] != '{') {
			return nil, usagef("--tools %s: tool %q needs an input_schema object", path, name)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, usagef("--tools %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// toolNames maps the tool names Shape sends back to the caller's. It is
// built from the system prompt and the tools alone, not the whole body: a
// continued conversation's history can be megabytes, parsed once already.
func (s *chatSession) toolNames() *stream.ToolNames {
	b, err := json.Marshal(struct {
		System string          `json:"system,omitempty"`
		Tools  json.RawMessage `json:"tools,omitempty"`
	}{s.opts.System, s.tools})
	if err != nil {
		return &stream.ToolNames{}
	}
	return stream.ToolNamesFor(b)
}
