package stream

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// streamGen writes synthetic Messages SSE streams in the style of the
// recordings (compact JSON, padding spaces before the closing brace, pings).
type streamGen struct {
	b     bytes.Buffer
	index int
}

// event writes data (a JSON object) with padding spaces before its final brace.
func (g *streamGen) event(name, data string) {
	g.b.WriteString("event: " + name + "\ndata: " + data[:len(data)-1] + "   }\n\n")
}

// rawEvent writes data without the padding (data must be a complete object).
func (g *streamGen) rawEvent(name, data string) {
	g.b.WriteString("event: " + name + "\ndata: " + data + "\n\n")
}

func (g *streamGen) start() {
	g.event("message_start", `{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_gen","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2479,"cache_creation_input_tokens":0,"cache_read_input_tokens":4096,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":6,"service_tier":"standard"}}}`)
	g.rawEvent("ping", `{"type": "ping"}`)
}

func (g *streamGen) blockStart(block string) {
	g.event("content_block_start", `{"type":"content_block_start","index":`+strconv.Itoa(g.index)+`,"content_block":`+block+`}`)
}

func (g *streamGen) delta(delta string) {
	g.event("content_block_delta", `{"type":"content_block_delta","index":`+strconv.Itoa(g.index)+`,"delta":`+delta+`}`)
}

func (g *streamGen) blockStop() {
	g.event("content_block_stop", `{"type":"content_block_stop","index":`+strconv.Itoa(g.index)+`}`)
	g.index++
}

func (g *streamGen) finish(stopReason string, output int) []byte {
	g.event("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"input_tokens":2479,"cache_creation_input_tokens":0,"cache_read_input_tokens":4096,"output_tokens":%d}}`, stopReason, output))
	g.event("message_stop", `{"type":"message_stop"}`)
	return g.b.Bytes()
}

// words are the text pieces of generated deltas (with escapes and non-ASCII).
var genWords = []string{"The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog", ". ", "It\\u2019s ", "22\u00b0C ", "\\\"quoted\\\" ", "line\\n"}

// textDeltas writes a text block of n deltas.
func (g *streamGen) textBlock(n int) {
	g.blockStart(`{"type":"text","text":""}`)
	for i := 0; i < n; i++ {
		g.delta(`{"type":"text_delta","text":"` + genWords[i%len(genWords)] + genWords[(i+3)%len(genWords)] + `"}`)
	}
	g.blockStop()
}

// genText is a text answer of n deltas.
func genText(n int) []byte {
	var g streamGen
	g.start()
	g.textBlock(n)
	return g.finish("end_turn", n)
}

// genThinkingTools is a thinking block, a text block and a tool_use whose
// input arrives in jsonChunks pieces.
func genThinkingTools(jsonChunks int) []byte {
	var g streamGen
	g.start()
	g.blockStart(`{"type":"thinking","thinking":"","signature":""}`)
	for i := 0; i < 500; i++ {
		g.delta(`{"type":"thinking_delta","thinking":"` + genWords[i%len(genWords)] + `"}`)
	}
	g.delta(`{"type":"signature_delta","signature":"` + strings.Repeat("EqQBCkYIBxgCKkB", 20) + `"}`)
	g.blockStop()
	g.textBlock(20)
	g.blockStart(`{"type":"tool_use","id":"toolu_gen","name":"write_file","input":{}}`)
	g.delta(`{"type":"input_json_delta","partial_json":""}`)
	g.delta(`{"type":"input_json_delta","partial_json":"{\"path\": \"out.txt\", \"lines\": ["}`)
	for i := 0; i < jsonChunks-3; i++ {
		sep := ", "
		if i == 0 {
			sep = ""
		}
		g.delta(`{"type":"input_json_delta","partial_json":"` + sep + `\"line ` + strconv.Itoa(i) + ` \\u00e9\""}`)
	}
	g.delta(`{"type":"input_json_delta","partial_json":"]}"}`)
	g.blockStop()
	return g.finish("tool_use", 3000)
}

// genBigDelta is one text delta of size bytes.
func genBigDelta(size int) []byte {
	var g streamGen
	g.start()
	g.blockStart(`{"type":"text","text":""}`)
	g.delta(`{"type":"text_delta","text":"` + strings.Repeat("a", size) + `"}`)
	g.blockStop()
	return g.finish("max_tokens", 1000000)
}

// genShort is a short chat of about 50 events.
func genShort() []byte {
	var g streamGen
	g.start()
	g.textBlock(42)
	return g.finish("end_turn", 60)
}
