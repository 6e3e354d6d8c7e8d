package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// sentNames returns the names of the client tools in a shaped body.
func sentNames(t *testing.T, body []byte) []string {
	t.Helper()
	var req struct {
		Tools []struct{ Type, Name string } `json:"tools"`
	}
	require.NoError(t, json.Unmarshal(body, &req))
	var out []string
	for _, tl := range req.Tools {
		if tl.Type == "" || tl.Type == "custom" {
			out = append(out, tl.Name)
		}
	}
	return out
}

// TestShapeGolden shapes testdata/shape/*.json for an OAuth token
// (go test -update rewrites testdata/golden/shape/) and checks the
// invariants on each: valid tool names that map back exactly, at most 4
// cache_control blocks, and idempotence.
func TestShapeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "shape", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			require.NoError(t, err)
			got, err := Shape(in, oauthTok)
			require.NoError(t, err)
			var pretty bytes.Buffer
			require.NoError(t, json.Indent(&pretty, got, "", "  "))
			golden(t, filepath.Join("testdata", "golden", "shape", filepath.Base(f)), append(pretty.Bytes(), '\n'))

			names := ToolNamesFor(in)
			orig := sentNames(t, in)
			sent := sentNames(t, got)
			require.Len(t, sent, len(orig))
			seen := map[string]bool{}
			for i, s := range sent {
				assert.Regexp(t, toolNameRE, s)
				assert.Equal(t, orig[i], names.Original(s), "maps back exactly")
				assert.False(t, seen[s], "unique: %s", s)
				seen[s] = true
			}
			assert.LessOrEqual(t, bytes.Count(got, []byte(`"cache_control":{`)), 4)
			again, err := Shape(got, oauthTok)
			require.NoError(t, err)
			assert.Equal(t, string(got), string(again), "a shaped body passes through")
		})
	}
}

func TestShapeCacheControlLimit(t *testing.T) {
	cc := `"cache_control":{"type":"ephemeral"}`
	block := `{"type":"text","text":"x",` + cc + `}`
	tests := []struct {
		name           string
		in             string
		identityCached bool
		total          int
	}{
		{"none", `{"messages":[{"role":"user","content":"hi"}]}`, true, 1},
		{"three: ours makes four", `{"system":[` + block + `],"tools":[{"name":"t",` + cc + `}],
			"messages":[{"role":"user","content":[` + block + `]}]}`, true, 4},
		{"four: ours carries none", `{"system":[` + block + `,` + block + `],
			"messages":[{"role":"user","content":[` + block + `,` + block + `]}]}`, false, 4},
		{"four with one nested in tool_result", `{"tools":[{"name":"t",` + cc + `}],
			"messages":[{"role":"user","content":[` + block + `]},{"role":"assistant","content":[{"type":"tool_use","id":"u","name":"t","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"u","content":[` + block + `]},` + block + `]}]}`, false, 4},
		{"five left as sent", `{"system":"s","tools":[{"name":"a",` + cc + `},{"name":"b",` + cc + `},{"name":"c",` + cc + `},{"name":"d",` + cc + `},{"name":"e",` + cc + `}]}`, false, 5},
		{"null cache_control not counted", `{"system":[{"type":"text","text":"x","cache_control":null},` + block + `,` + block + `,` + block + `]}`, true, 4},
		{"string system", `{"system":"be brief","messages":[{"role":"user","content":[` + block + `,` + block + `,` + block + `,` + block + `]}]}`, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Shape([]byte(tt.in), oauthTok)
			require.NoError(t, err)
			var req struct {
				System []map[string]json.RawMessage `json:"system"`
			}
			require.NoError(t, json.Unmarshal(got, &req))
			require.NotEmpty(t, req.System)
			assert.JSONEq(t, `"`+IdentityText+`"`, string(req.System[0]["text"]))
			_, cached := req.System[0]["cache_control"]
			assert.Equal(t, tt.identityCached, cached)
			assert.Equal(t, tt.total, bytes.Count(got, []byte(`"cache_control":{`)))
		})
	}
}

func TestSentToolNames2026(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct{ in, want string }{
		{"Read", "Read"},
		{"KillShell", "KillShell"},
		{"NotebookEdit", "NotebookEdit"},
		{"TaskOutput", "TaskOutput"},
		{"TodoWrite", "TodoWrite"},
		{"todowrite", "mcp__piauth__todowrite"}, // refused lowercase: mapped
		{"read", "mcp__piauth__read"},
		{"mcp_read", "mcp__piauth__mcp_read"}, // refused single underscore: mapped
		{"mcp__x__y", "mcp__x__y"},
		{"mcp__my server__do it", "mcp__piauth__mcp__my_server__do_it"},   // not a valid name: mapped
		{strings.Repeat("y", 115), ToolPrefix + strings.Repeat("y", 115)}, // exactly 128
		{long, hashedToolName(long)},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			got := SentToolName(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Regexp(t, toolNameRE, got)
		})
	}
	h := hashedToolName(long)
	assert.Len(t, h, 128)
	assert.Regexp(t, `^mcp__piauth__x+_[0-9a-f]{8}$`, h)
	assert.Equal(t, h, hashedToolName(long), "deterministic")
	assert.NotEqual(t, h, hashedToolName(long+"z"), "differs by name")
}

func TestToolNamesExact(t *testing.T) {
	long1 := strings.Repeat("a", 130) + "-one"
	long2 := strings.Repeat("a", 130) + "-two"
	body := []byte(`{"tools":[{"name":"a.b"},{"name":"a b"},{"name":"mcp__piauth__kept"},{"name":"` + long1 + `"},{"name":"` + long2 + `"},{"name":"a.b"}],
		"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"u","name":"a b","input":{}}]}]}`)
	m := ToolNamesFor(body)
	shaped, err := Shape(body, oauthTok)
	require.NoError(t, err)
	sent := sentNames(t, shaped)
	want := []string{"a.b", "a b", "mcp__piauth__kept", long1, long2, "a.b"}
	require.Len(t, sent, len(want))
	assert.Equal(t, "mcp__piauth__a_b", sent[0])
	assert.NotEqual(t, sent[0], sent[1], "colliding names kept apart")
	assert.Equal(t, sent[0], sent[5], "the same name maps the same")
	assert.NotEqual(t, sent[3], sent[4])
	for i, s := range sent {
		assert.Regexp(t, toolNameRE, s)
		assert.Equal(t, want[i], m.Original(s))
	}
	var msgs struct {
		Messages []struct {
			Content []struct{ Name string } `json:"content"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(shaped, &msgs))
	assert.Equal(t, sent[1], msgs.Messages[0].Content[0].Name, "tool_use uses the request's mapping")

	ev := []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"` + sent[4] + `","input":{}}}`)
	var got struct {
		ContentBlock struct{ Name string } `json:"content_block"`
	}
	require.NoError(t, json.Unmarshal(MapEventToolName(ev, m), &got))
	assert.Equal(t, long2, got.ContentBlock.Name, "streamed names map back exactly")
}

func TestPassThrough(t *testing.T) {
	identity := `{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude."}`
	billing := `{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.290.abc; cc_entrypoint=cli; cch=00000;"}`
	tools := `"tools":[{"name":"get weather"},{"name":"mcp_read"},{"name":"Read"}]`
	five := `,"messages":[{"role":"user","content":[{"type":"text","text":"1","cache_control":{"type":"ephemeral"}},{"type":"text","text":"2","cache_control":{"type":"ephemeral"}},{"type":"text","text":"3","cache_control":{"type":"ephemeral"}},{"type":"text","text":"4","cache_control":{"type":"ephemeral"}},{"type":"text","text":"5","cache_control":{"type":"ephemeral"}}]}]`
	tests := []struct {
		name string
		body string
		pass bool
	}{
		{"identity first", `{"model":"claude-opus-5-5",  "system":[` + identity + `,{"type":"text","text":"more"}],` + tools + five + `}`, true},
		{"billing then identity", "{\n \"system\": [" + billing + ", " + identity + "],\n " + tools + "\n}", true},
		{"identity with cache_control", `{"system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude.","cache_control":{"type":"ephemeral"}}],` + tools + `}`, true},
		{"billing without identity", `{"system":[` + billing + `,{"type":"text","text":"other"}],` + tools + `}`, false},
		{"identity second", `{"system":[{"type":"text","text":"other"},` + identity + `],` + tools + `}`, false},
		{"identity as string", `{"system":"You are Claude Code, Anthropic's official CLI for Claude.",` + tools + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Shape([]byte(tt.body), oauthTok)
			require.NoError(t, err)
			m := ToolNamesFor([]byte(tt.body))
			if !tt.pass {
				assert.NotEqual(t, tt.body, string(got))
				assert.Equal(t, "get weather", m.Original("mcp__piauth__get_weather"))
				return
			}
			assert.Equal(t, tt.body, string(got), "byte for byte")
			assert.Equal(t, "mcp__piauth__x", m.Original("mcp__piauth__x"), "maps nothing")
			ev := []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"mcp__piauth__x","input":{}}}`)
			assert.Equal(t, string(ev), string(MapEventToolName(ev, m)))
			assert.NotContains(t, string(got), "cch=forged", "we add nothing")

			req, err := NewRequest(context.Background(), "http://example.invalid", []byte(tt.body))
			require.NoError(t, err)
			require.NoError(t, Prepare(req, oauthTok))
			sent, err := io.ReadAll(req.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.body, string(sent))
			assert.Equal(t, "Bearer "+oauthTok, req.Header.Get("Authorization"), "auth headers are ours")
		})
	}
}

func TestPrepareHeadersPerModel(t *testing.T) {
	tests := []struct {
		model    string
		thinking bool
	}{
		{"claude-opus-5-5", false},
		{"sonnet", false},
		{"claude-haiku-4-5", true},
		{"claude-next-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			req, err := NewRequest(context.Background(), "http://example.invalid", []byte(`{"model":"`+tt.model+`","stream":true}`))
			require.NoError(t, err)
			req.Header.Set("Anthropic-Beta", "fine-grained-tool-streaming-2025-05-14,context-1m-2025-08-07")
			require.NoError(t, Prepare(req, oauthTok))
			betas := req.Header.Get("Anthropic-Beta")
			assert.Equal(t, tt.thinking, strings.Contains(betas, "interleaved-thinking-2025-05-14"), betas)
			assert.True(t, strings.HasPrefix(betas, "claude-code-20250219,oauth-2025-04-20"))
			assert.Contains(t, betas, "context-1m-2025-08-07", "client betas kept")
			assert.NotContains(t, betas, "fine-grained")
			assert.Equal(t, "claude-cli/2.1.280 (external, cli)", req.Header.Get("User-Agent"))
			assert.Equal(t, "text/event-stream", req.Header.Get("Accept"))
		})
	}
}

func TestTokenTransportService(t *testing.T) {
	ua := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua <- r.Header.Get("User-Agent")
	}))
	defer srv.Close()
	req, err := NewRequest(context.Background(), srv.URL, []byte(`{"model":"opus"}`))
	require.NoError(t, err)
	tr := &TokenTransport{Service: Builtin().WithVersion("2.1.301"),
		Token: func(context.Context) (string, error) { return oauthTok, nil }}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "claude-cli/2.1.301 (external, cli)", <-ua)
}
