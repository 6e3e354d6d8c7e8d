package stream

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMapMessageToolNames(t *testing.T) {
	body := []byte(`{"model":"claude-sonnet-5-5","tools":[{"name":"read_file","input_schema":{"type":"object"}},{"name":"Read","input_schema":{"type":"object"}}],"messages":[]}`)
	m := ToolNamesFor(body)
	tests := []struct{ name, in, want string }{
		{"mapped back, html kept unescaped",
			`{"id":"msg_1","content":[{"type":"text","text":"<b>&</b>"},{"type":"tool_use","id":"t1","name":"mcp__piauth__read_file","input":{}}]}`,
			`{"content":[{"text":"<b>&</b>","type":"text"},{"id":"t1","input":{},"name":"read_file","type":"tool_use"}],"id":"msg_1"}`},
		{"Claude Code's own name untouched", `{"content":[{"type":"tool_use","name":"Read"}]}`, `{"content":[{"type":"tool_use","name":"Read"}]}`},
		{"not JSON", `{"content":[mcp__piauth__x`, `{"content":[mcp__piauth__x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(MapMessageToolNames([]byte(tt.in), m)))
		})
	}
}
