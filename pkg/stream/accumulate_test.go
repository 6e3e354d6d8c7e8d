package stream

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// goldenResult is what a golden file records for one stream.
type goldenResult struct {
	Message *Message `json:"message"`
	Deltas  struct {
		Text     string   `json:"text"`
		Thinking string   `json:"thinking"`
		ToolUses []string `json:"tool_uses"`
		Usage    int      `json:"usage_updates"`
	} `json:"deltas"`
	Error string `json:"error,omitempty"`
}

func TestGoldenStreams(t *testing.T) {
	files, err := filepath.Glob("testdata/streams/*.sse")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".sse")
		t.Run(name, func(t *testing.T) {
			fh, err := os.Open(f)
			require.NoError(t, err)
			defer fh.Close()
			var res goldenResult
			tools := ToolNamesFor([]byte(`{"tools":[{"name":"get_weather"},{"name":"calc"},{"name":"Read"}]}`))
			res.Message, err = ReadMessage(fh, tools, func(d Delta) error {
				res.Deltas.Text += string(d.Text)
				res.Deltas.Thinking += string(d.Thinking)
				if d.ToolUse != nil {
					res.Deltas.ToolUses = append(res.Deltas.ToolUses, d.ToolUse.Name+" "+string(d.ToolUse.Input))
				}
				if d.Usage != nil {
					res.Deltas.Usage++
				}
				return nil
			})
			if err != nil {
				res.Error = err.Error()
			}
			got, err := json.MarshalIndent(res, "", "  ")
			require.NoError(t, err)
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create it")
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

func TestReadMessageErrors(t *testing.T) {
	tests := []struct {
		file   string
		check  func(t *testing.T, err error)
		blocks int
	}{
		{"error.sse", func(t *testing.T, err error) {
			var se *StreamError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "overloaded_error", se.Type)
			assert.Equal(t, "Overloaded", se.Message)
		}, 1},
		{"truncated.sse", func(t *testing.T, err error) {
			assert.ErrorIs(t, err, ErrTruncated)
			assert.Contains(t, err.Error(), "stream ended before message_stop")
		}, 1},
		{"badjson.sse", func(t *testing.T, err error) {
			assert.ErrorContains(t, err, "content block 0")
			assert.ErrorContains(t, err, `"calc"`)
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "streams", tt.file))
			require.NoError(t, err)
			defer f.Close()
			m, err := ReadMessage(f, ToolNamesFor([]byte(`{"tools":[{"name":"calc"}]}`)), nil)
			require.Error(t, err)
			tt.check(t, err)
			require.NotNil(t, m, "partial message returned")
			assert.Len(t, m.Content, tt.blocks)
		})
	}
}

// feed runs events through a fresh accumulator and returns the first error.
func feed(a *Accumulator, events ...string) error {
	for _, e := range events {
		name, data, _ := strings.Cut(e, " ")
		if _, err := a.Add(Event{Name: name, Data: []byte(data)}); err != nil {
			return err
		}
	}
	return nil
}

const (
	evStart     = `message_start {"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":5}}}`
	evText0     = `content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	evTool0     = `content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"x","input":{}}}`
	evDeltaHi   = `content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`
	evStop0     = `content_block_stop {"type":"content_block_stop","index":0}`
	evMsgStop   = `message_stop {"type":"message_stop"}`
	evBadJSON   = `content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{nope"}}`
	evDeltaIdx5 = `content_block_delta {"type":"content_block_delta","index":5,"delta":{"type":"text_delta","text":"hi"}}`
)

func TestAccumulatorErrors(t *testing.T) {
	tests := []struct {
		name    string
		events  []string
		wantErr string
	}{
		{"delta before message_start", []string{evDeltaHi}, "before message_start"},
		{"unknown block index (fast path)", []string{evStart, evText0, evDeltaIdx5}, "unknown content block 5"},
		{"unknown block index (general path)", []string{evStart, evText0, `content_block_delta {"index":5,"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}`}, "unknown content block 5"},
		{"start out of order", []string{evStart, `content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`}, "expected 0"},
		{"start twice", []string{evStart, evText0, evText0}, "expected 1"},
		{"delta after stop", []string{evStart, evText0, evStop0, evDeltaHi}, "after its content_block_stop"},
		{"stop of unknown block", []string{evStart, evStop0}, "unknown content block 0"},
		{"delta type mismatch", []string{evStart, evTool0, evDeltaHi}, "text_delta for tool_use block 0"},
		{"invalid tool json", []string{evStart, evTool0, evBadJSON, evStop0}, `content block 0 (tool_use "x")`},
		{"invalid event json", []string{evStart, `message_delta {nope`}, "event message_delta"},
		{"second message_start", []string{evStart, evStart}, "second message_start"},
		{"event after message_stop", []string{evStart, evMsgStop, evText0}, "after message_stop"},
		{"negative index", []string{evStart, `content_block_delta {"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"x"}}`}, "unknown content block -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Accumulator
			err := feed(&a, tt.events...)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestAccumulatorIgnoresAndFallsBack(t *testing.T) {
	var a Accumulator
	require.NoError(t, feed(&a, `ping {"type": "ping"}`, evStart,
		`future_event {"type":"future_event"}`,
		// no event: line: the data's type decides
		` {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"A"}}`,
		evDeltaHi,
		`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"future_delta","x":1}}`,
		`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\ud83d\ude00\u00e9"}}`,
		`content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\ud83d"}}`,
		evStop0,
		`message_delta {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":7}}`,
	))
	assert.False(t, a.Done())
	assert.ErrorIs(t, a.Finish(), ErrTruncated)
	d, err := a.Add(Event{Name: "message_stop", Data: []byte(`{"type":"message_stop"}`)})
	require.NoError(t, err)
	assert.True(t, d.Done)
	require.NoError(t, a.Finish())
	m := a.Message()
	require.Len(t, m.Content, 1)
	assert.Equal(t, "Ahi😀é\uFFFD", m.Content[0].Text, "escapes decode like encoding/json")
	assert.Equal(t, "max_tokens", m.StopReason)
	assert.Equal(t, Usage{InputTokens: 10, OutputTokens: 7, CacheReadInputTokens: 5}, m.Usage)
}

func TestUsageCumulative(t *testing.T) {
	var a Accumulator
	require.NoError(t, feed(&a,
		`message_start {"type":"message_start","message":{"usage":{"input_tokens":100,"output_tokens":1,"cache_creation_input_tokens":30,"cache_read_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":20}}}}`,
		`message_delta {"type":"message_delta","delta":{},"usage":{"output_tokens":50}}`,
		`message_delta {"type":"message_delta","delta":{},"usage":{"output_tokens":80,"input_tokens":120,"output_tokens_details":{"thinking_tokens":33},"server_tool_use":{"web_search_requests":2}}}`,
	))
	assert.Equal(t, Usage{InputTokens: 120, OutputTokens: 80, CacheCreationInputTokens: 30, CacheReadInputTokens: 7,
		CacheCreation5m: 10, CacheCreation1h: 20, ThinkingTokens: 33, WebSearchRequests: 2}, a.Usage())
}

func TestStreamErrorBeforeStart(t *testing.T) {
	var a Accumulator
	_, err := a.Add(Event{Name: "error", Data: []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)})
	var se *StreamError
	require.True(t, errors.As(err, &se))
	assert.Equal(t, "rate_limit_error", se.Type)
	assert.Equal(t, "anthropic stream error: rate_limit_error: slow down", se.Error())
}
