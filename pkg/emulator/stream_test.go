package emulator

import (
	"context"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func streamBody(mod func(m map[string]any)) string {
	return body(func(m map[string]any) {
		m["stream"] = true
		if mod != nil {
			mod(m)
		}
	})
}

func richScenario() *Scenario {
	return &Scenario{Reply: Reply{
		Text:             "Checking the weather.",
		Deltas:           4,
		Thinking:         "The user wants the weather.",
		ThinkingDeltas:   2,
		Signature:        "sig-abc",
		RedactedThinking: "opaque-data",
		ToolCalls:        []ToolCall{{ID: "toolu_01fixed", Name: "get_weather", Input: json.RawMessage(`{"city": "San Francisco"}`), Chunks: 3}},
		Usage:            &Usage{InputTokens: 394, OutputTokens: 79, CacheRead: 100, CacheCreation5m: 7, CacheCreation1h: 3},
	}}
}

func TestStreamShape(t *testing.T) {
	_, srv := start(t, Options{Scenario: richScenario()})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "s")), streamBody(nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	evs := readEvents(t, resp.Body)

	want := []string{"message_start", "ping",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", // thinking
		"content_block_start", "content_block_stop", // redacted
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", // text
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", // tool
		"message_delta", "message_stop"}
	require.Equal(t, want, names(evs))

	padded := 0
	parsed := make([]map[string]any, len(evs))
	for i, ev := range evs {
		require.NoError(t, json.Unmarshal([]byte(ev.data), &parsed[i]), ev.data)
		assert.Equal(t, ev.name, parsed[i]["type"])
		if strings.HasSuffix(ev.data, " }") {
			padded++
		}
	}
	assert.Greater(t, padded, len(evs)/2, "events carry trailing spaces like real recordings")

	usage := parsed[0]["message"].(map[string]any)["usage"].(map[string]any)
	assert.Equal(t, map[string]any{"ephemeral_5m_input_tokens": 7.0, "ephemeral_1h_input_tokens": 3.0}, usage["cache_creation"])
	assert.Equal(t, 10.0, usage["cache_creation_input_tokens"])
	assert.Equal(t, 100.0, usage["cache_read_input_tokens"])
	assert.Equal(t, "standard", usage["service_tier"])
	assert.Equal(t, testModel, parsed[0]["message"].(map[string]any)["model"], "the reply echoes the request's model")

	delta := func(i int) map[string]any { return parsed[i]["delta"].(map[string]any) }
	assert.Equal(t, "signature_delta", delta(5)["type"])
	assert.Equal(t, "sig-abc", delta(5)["signature"])
	assert.Equal(t, "opaque-data", parsed[7]["content_block"].(map[string]any)["data"])
	tool := parsed[15]["content_block"].(map[string]any)
	assert.Equal(t, "mcp__piauth__get_weather", tool["name"], "tool name echoed as the client sent it")
	assert.Equal(t, map[string]any{}, tool["input"])
	assert.Equal(t, "", delta(16)["partial_json"], "first input_json_delta is empty")
	var joined string
	for i := 16; i < 20; i++ {
		joined += delta(i)["partial_json"].(string)
	}
	assert.JSONEq(t, `{"city":"San Francisco"}`, joined)

	md := parsed[21]
	assert.Equal(t, "tool_use", md["delta"].(map[string]any)["stop_reason"])
	assert.Equal(t, 79.0, md["usage"].(map[string]any)["output_tokens"])
	assert.Equal(t, 394.0, md["usage"].(map[string]any)["input_tokens"])
}

func TestMidstreamError(t *testing.T) {
	_, srv := start(t, Options{})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "midstream")), streamBody(nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	evs := readEvents(t, resp.Body)
	assert.Equal(t, []string{"message_start", "ping", "content_block_start",
		"content_block_delta", "content_block_delta", "content_block_delta", "error"}, names(evs))
	var e apiErr
	require.NoError(t, json.Unmarshal([]byte(evs[len(evs)-1].data), &e))
	assert.Equal(t, "overloaded_error", e.Error.Type)
}

// textOf joins the text deltas of a stream.
func textOf(t *testing.T, evs []event) (string, int) {
	t.Helper()
	var sb strings.Builder
	n := 0
	for _, ev := range evs {
		if ev.name != "content_block_delta" {
			continue
		}
		var d struct {
			Delta struct {
				Type, Text string
			}
		}
		require.NoError(t, json.Unmarshal([]byte(ev.data), &d))
		if d.Delta.Type == "text_delta" {
			sb.WriteString(d.Delta.Text)
			n++
		}
	}
	return sb.String(), n
}

func TestScriptedTextSizes(t *testing.T) {
	many := 20000
	if testing.Short() {
		many = 2000
	}
	tests := []struct {
		name       string
		reply      Reply
		wantText   string
		wantDeltas int
		maxDelta   int
	}{
		{"default", Reply{}, DefaultText, 3, 0},
		{"repeat", Reply{Text: "ab\"c\n", Repeat: 3, Deltas: 5}, strings.Repeat("ab\"c\n", 3), 5, 0},
		{"many deltas", Reply{Text: "word ", Size: many * 5, Deltas: many}, strings.Repeat("word ", many), many, 0},
		{"one delta over 1 MiB", Reply{Text: "0123456789abcdef", Size: 1<<20 + 16, Deltas: 1}, strings.Repeat("0123456789abcdef", 1<<16+1), 1, 1 << 20},
		{"utf-8 never split", Reply{Text: "héllo wörld ✓ ", Size: 100, Deltas: 33}, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := start(t, Options{Scenario: &Scenario{Reply: tt.reply}})
			resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "s")), streamBody(nil))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got, n := textOf(t, readEvents(t, resp.Body))
			if tt.wantText == "" { // utf-8 case
				assert.True(t, utf8.ValidString(got))
				assert.LessOrEqual(t, len(got), 100)
				assert.Greater(t, len(got), 96)
				assert.True(t, strings.HasPrefix(strings.Repeat(tt.reply.Text, 10), got))
				return
			}
			assert.Equal(t, tt.wantText, got)
			assert.Equal(t, tt.wantDeltas, n)
			assert.Greater(t, len(got), tt.maxDelta)
		})
	}
}

func TestNonStreamMatchesStream(t *testing.T) {
	_, srv := start(t, Options{Scenario: richScenario()})
	streamed := accumulate(t, post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "s")), streamBody(nil)))

	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "s")), body(nil))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	whole := decodeMessage(t, resp.Body)

	assert.Equal(t, blocksOf(t, streamed.Content), blocksOf(t, whole.Content))
	assert.Equal(t, streamed.StopReason, whole.StopReason)
	assert.Equal(t, streamed.Usage.OutputTokens, whole.Usage.OutputTokens)
	assert.Equal(t, streamed.Usage.CacheReadInputTokens, whole.Usage.CacheReadInputTokens)
}

func TestStreamStopsOnCancelledContext(t *testing.T) {
	e := New(Options{Scenario: &Scenario{Reply: Reply{Size: 1 << 20, Deltas: 1000}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/messages", strings.NewReader(streamBody(nil)))
	req.Header = oauthHeaders(fakeTok("oat", "s"))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), "event:")
}

func TestGoldenStream(t *testing.T) {
	sc := richScenario()
	sc.Reply.ToolCalls[0].ID = ""
	e := New(Options{Scenario: sc, Rand: rand.NewChaCha8([32]byte{1})})
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(streamBody(nil)))
	req.Header = oauthHeaders(fakeTok("oat", "s"))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	path := filepath.Join("testdata", "rich-stream.golden.sse")
	if *update {
		require.NoError(t, os.WriteFile(path, rec.Body.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), rec.Body.String())
}

func BenchmarkStream20kDeltas(b *testing.B) {
	e := New(Options{Scenario: &Scenario{Reply: Reply{Text: "word ", Size: 100000, Deltas: 20000}}})
	reqBody := streamBody(nil)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(reqBody))
		req.Header = oauthHeaders("sk-ant-oat01-bench")
		e.ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

func Benchmark50MBStream(b *testing.B) {
	e := New(Options{Scenario: &Scenario{Reply: Reply{Size: 50 << 20, Deltas: 5000}}})
	reqBody := streamBody(nil)
	b.SetBytes(50 << 20)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(reqBody))
		req.Header = oauthHeaders("sk-ant-oat01-bench")
		e.ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}
func (d discardWriter) Flush()                      {}

func TestDelaysUseInjectedSleep(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	sc := &Scenario{Tokens: []TokenRule{{Contains: "slow",
		Outcomes: []Outcome{{Status: 200, DelayMS: 250}},
		Reply:    &Reply{EventDelayMS: 5, Deltas: 2, Text: "abcd"}}}}
	_, srv := start(t, Options{Scenario: sc, Sleep: func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		return nil
	}})
	resp := post(t, srv, "/v1/messages", oauthHeaders(fakeTok("oat", "slow")), streamBody(nil))
	evs := readEvents(t, resp.Body)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, slept)
	assert.Equal(t, 250*time.Millisecond, slept[0])
	assert.Len(t, slept, 1+len(evs), "one pause before the answer, one before each event")
	for _, d := range slept[1:] {
		assert.Equal(t, 5*time.Millisecond, d)
	}
}
