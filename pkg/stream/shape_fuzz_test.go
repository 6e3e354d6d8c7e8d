package stream

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzShape checks that shaping never panics and that an OAuth body it
// accepts comes out with valid tool names that map back, and is stable
// under a second Shape.
func FuzzShape(f *testing.F) {
	files, _ := filepath.Glob("testdata/shape/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"system":"s","tools":[{"name":"a.b"},{"name":"a b"},{"name":""}]}`))
	f.Add([]byte(`{"system":[{"type":"text","text":"x-anthropic-billing-header: x"}],"tools":[{"name":"mcp_x"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Shape(in, oauthTok)
		if err != nil {
			return
		}
		names := ToolNamesFor(in)
		// Exact keys, as the API reads them (a struct decode would take
		// "toolS" for "tools": encoding/json matches fields case-insensitively).
		origTools, sentTools := exactTools(in), exactTools(out)
		if origTools == nil || sentTools == nil || bytes.Equal(in, out) {
			return
		}
		if len(origTools) != len(sentTools) {
			t.Fatalf("tools: %d in, %d out", len(origTools), len(sentTools))
		}
		for i, tl := range sentTools {
			name, want := tl.str("name"), origTools[i].str("name")
			if isServerTool(tl) || want == "" {
				continue
			}
			if !validToolName(name) {
				t.Fatalf("invalid tool name sent: %q", name)
			}
			if got := names.Original(name); got != want {
				t.Fatalf("%q maps back to %q, want %q", name, got, want)
			}
		}
		again, err := Shape(out, oauthTok)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second Shape changed the body (err %v)", err)
		}
	})
}

// exactTools is the "tools" array of a request body, by its exact key; nil
// when there is none or it is not an array of objects.
func exactTools(body []byte) []object {
	var top object
	var tools []object
	if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["tools"], &tools) != nil {
		return nil
	}
	return tools
}
