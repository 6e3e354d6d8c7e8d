package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/ssestream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
)

// accumulate decodes an SSE response with the official SDK, the referee.
func accumulate(t *testing.T, resp *http.Response) anthropic.Message {
	t.Helper()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(resp), nil)
	defer stream.Close()
	var msg anthropic.Message
	events := 0
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
		events++
	}
	require.NoError(t, stream.Err())
	require.Positive(t, events)
	return msg
}

func decodeMessage(t *testing.T, r io.Reader) anthropic.Message {
	t.Helper()
	var m anthropic.Message
	require.NoError(t, json.NewDecoder(r).Decode(&m))
	return m
}

// blockView is the comparable part of a content block.
type blockView struct {
	Type, Text, Thinking, Signature, Data, ID, Name string
	Input                                           any
}

func blocksOf(t *testing.T, blocks []anthropic.ContentBlockUnion) []blockView {
	t.Helper()
	out := make([]blockView, len(blocks))
	for i, b := range blocks {
		out[i] = blockView{Type: b.Type, Text: b.Text, Thinking: b.Thinking, Signature: b.Signature, Data: b.Data, ID: b.ID, Name: b.Name}
		if b.Type == "tool_use" {
			require.NoError(t, json.Unmarshal(b.Input, &out[i].Input))
		}
	}
	return out
}

func TestRefereeToolUseMatchesRecording(t *testing.T) {
	f, err := os.Open(filepath.Join(testenv.TranscriptsDir(t), "tool-use.sse"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	recorded := accumulate(t, &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: f})

	text := "I'd be happy to check the weather in San Francisco for you. Let me get that information for you right away."
	sc := &Scenario{Reply: Reply{
		Text: text, Deltas: 14,
		ToolCalls: []ToolCall{{ID: "toolu_017QoD96fYwGzCWvLfaPADWg", Name: "get_weather", Input: json.RawMessage(`{"city": "San Francisco"}`), Chunks: 3}},
		Usage:     &Usage{InputTokens: 394, OutputTokens: 79},
	}}
	_, srv := start(t, Options{Scenario: sc})
	reqBody := streamBody(func(m map[string]any) {
		delete(m, "system")
		m["tools"] = []any{map[string]any{"name": "get_weather", "input_schema": map[string]any{"type": "object"}}}
	})
	emulated := accumulate(t, post(t, srv, "/v1/messages", apiKeyHeaders(fakeTok("api", "referee")), reqBody))

	require.Len(t, recorded.Content, 2)
	assert.Equal(t, blocksOf(t, recorded.Content), blocksOf(t, emulated.Content))
	assert.Equal(t, recorded.StopReason, emulated.StopReason)
	assert.Equal(t, recorded.Usage.InputTokens, emulated.Usage.InputTokens)
	assert.Equal(t, recorded.Usage.OutputTokens, emulated.Usage.OutputTokens)
}

func TestRefereeDecodesEveryBlockKind(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
		check func(t *testing.T, m anthropic.Message)
	}{
		{"thinking", Reply{Thinking: "Let me think about it.", ThinkingDeltas: 4, Signature: "EvMCsig==", Text: "Done."},
			func(t *testing.T, m anthropic.Message) {
				require.Len(t, m.Content, 2)
				assert.Equal(t, "thinking", m.Content[0].Type)
				assert.Equal(t, "Let me think about it.", m.Content[0].Thinking)
				assert.Equal(t, "EvMCsig==", m.Content[0].Signature)
				assert.Equal(t, "Done.", m.Content[1].Text)
				assert.Equal(t, anthropic.StopReasonEndTurn, m.StopReason)
			}},
		{"redacted thinking", Reply{RedactedThinking: "EqkECkYIBxgC", Text: "Hi."},
			func(t *testing.T, m anthropic.Message) {
				require.Len(t, m.Content, 2)
				assert.Equal(t, "redacted_thinking", m.Content[0].Type)
				assert.Equal(t, "EqkECkYIBxgC", m.Content[0].Data)
			}},
		{"tool only", Reply{NoText: true, ToolCalls: []ToolCall{{Name: "Bash", Input: json.RawMessage(`{"command":"ls -la \"x\""}`), Chunks: 7}}},
			func(t *testing.T, m anthropic.Message) {
				require.Len(t, m.Content, 1)
				assert.Equal(t, "Bash", m.Content[0].Name)
				assert.JSONEq(t, `{"command":"ls -la \"x\""}`, string(m.Content[0].Input))
				assert.Equal(t, anthropic.StopReasonToolUse, m.StopReason)
			}},
		{"big delta", Reply{Text: "x", Size: 2 << 20, Deltas: 1},
			func(t *testing.T, m anthropic.Message) {
				require.Len(t, m.Content, 1)
				assert.Equal(t, strings.Repeat("x", 2<<20), m.Content[0].Text)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := start(t, Options{Scenario: &Scenario{Reply: tt.reply}})
			tt.check(t, accumulate(t, post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "ref")), streamBody(nil))))
		})
	}
}

func TestRefereeSeesMidstreamError(t *testing.T) {
	_, srv := start(t, Options{})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "midstream")), streamBody(nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(resp), nil)
	defer stream.Close()
	for stream.Next() {
	}
	require.Error(t, stream.Err())
	assert.Contains(t, stream.Err().Error(), "overloaded_error")
}
