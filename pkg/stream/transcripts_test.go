package stream

import (
	"bytes"
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

// transcripts returns the recorded *.sse files (see testenv.TranscriptsDir).
func transcripts(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.TranscriptsDir(t), "*.sse"))
	require.NoError(t, err)
	return files
}

// projection keeps the fields the transcripts' expected.json files record.
func projection(t *testing.T, m any) any {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var v struct {
		Content    json.RawMessage `json:"content"`
		StopReason *string         `json:"stop_reason"`
		Usage      struct {
			InputTokens              int64 `json:"input_tokens"`
			OutputTokens             int64 `json:"output_tokens"`
			CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
			CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(b, &v))
	var out any
	b, err = json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func TestTranscripts(t *testing.T) {
	for _, f := range transcripts(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			want, err := os.ReadFile(strings.TrimSuffix(f, ".sse") + ".expected.json")
			require.NoError(t, err)
			m, err := ReadMessage(bytes.NewReader(raw), nil, nil)
			require.NoError(t, err)
			var wantV any
			require.NoError(t, json.Unmarshal(want, &wantV))
			assert.Equal(t, wantV, projection(t, m))
		})
	}
}

// sdkAccumulate decodes and accumulates raw with the official SDK.
func sdkAccumulate(raw []byte) (*anthropic.Message, error) {
	resp := &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": []string{"text/event-stream"}},
		Body:       io.NopCloser(bytes.NewReader(raw)),
	}
	s := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(resp), nil)
	var m anthropic.Message
	for s.Next() {
		if err := m.Accumulate(s.Current()); err != nil {
			return nil, err
		}
	}
	return &m, s.Err()
}

// contentView is the comparable core of a content block.
type contentView struct {
	Type, Text, Thinking, Signature, Data, ID, Name string
	Input                                           string
	Citations                                       int
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

func TestDifferentialSDK(t *testing.T) {
	for _, f := range transcripts(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			ours, err := ReadMessage(bytes.NewReader(raw), nil, nil)
			require.NoError(t, err)
			sdk, err := sdkAccumulate(raw)
			require.NoError(t, err)

			var gotC, wantC []contentView
			for _, b := range ours.Content {
				v := contentView{Type: b.Type, Text: b.Text, Thinking: b.Thinking, Signature: b.Signature, Data: b.Data,
					ID: b.ID, Name: b.Name, Citations: len(b.Citations)}
				if isToolBlock(b.Type) {
					v.Input = compactJSON(t, b.Input)
				}
				gotC = append(gotC, v)
			}
			for _, b := range sdk.Content {
				v := contentView{Type: b.Type, Text: b.Text, Thinking: b.Thinking, Signature: b.Signature, Data: b.Data,
					ID: b.ID, Name: b.Name, Citations: len(b.Citations)}
				if isToolBlock(b.Type) {
					v.Input = compactJSON(t, b.Input)
				}
				wantC = append(wantC, v)
			}
			assert.Equal(t, wantC, gotC)
			assert.Equal(t, string(sdk.StopReason), ours.StopReason)
			u := sdk.Usage
			assert.Equal(t, Usage{
				InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
				CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens,
				CacheCreation5m: u.CacheCreation.Ephemeral5mInputTokens, CacheCreation1h: u.CacheCreation.Ephemeral1hInputTokens,
				ThinkingTokens:    u.OutputTokensDetails.ThinkingTokens,
				WebSearchRequests: u.ServerToolUse.WebSearchRequests, WebFetchRequests: u.ServerToolUse.WebFetchRequests,
			}, ours.Usage)
		})
	}
}
