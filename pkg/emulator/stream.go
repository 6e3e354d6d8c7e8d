package emulator

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"time"
)

// pads are the trailing spaces before the closing brace, cycling, the way
// real recordings carry them.
var pads = [...]int{7, 1, 0, 15, 6, 2, 0, 11, 4, 9, 3, 14, 5}

const spaces = "               "

// sse writes server-sent events straight to the connection.
type sse struct {
	ctx   context.Context
	w     *bufio.Writer
	rc    *http.ResponseController
	sleep func(context.Context, time.Duration) error
	delay time.Duration
	n     int
	err   error
}

// begin starts an event; false when the stream is dead.
func (s *sse) begin(name string) bool {
	if s.err == nil {
		s.err = s.ctx.Err()
	}
	if s.err == nil && s.delay > 0 {
		s.err = s.sleep(s.ctx, s.delay)
	}
	if s.err != nil {
		return false
	}
	s.w.WriteString("event: ")
	s.w.WriteString(name)
	s.w.WriteString("\ndata: ")
	return true
}

// end closes the JSON object of the event (padded) and flushes it.
func (s *sse) end() {
	s.w.WriteString(spaces[:pads[s.n%len(pads)]])
	s.n++
	s.flush("}\n\n")
}

// flush writes the end of an event and pushes it to the client.
func (s *sse) flush(tail string) {
	s.w.WriteString(tail)
	if s.err = s.w.Flush(); s.err == nil {
		s.err = s.rc.Flush()
	}
}

// ping writes a ping event, unpadded like the real ones.
func (s *sse) ping() {
	if s.begin("ping") {
		s.flush(`{"type": "ping"}` + "\n\n")
	}
}

func (s *sse) blockEvent(name string, index int) bool {
	if !s.begin(name) {
		return false
	}
	s.w.WriteString(`{"type":"`)
	s.w.WriteString(name)
	s.w.WriteString(`","index":`)
	s.w.WriteString(strconv.Itoa(index))
	return true
}

func (s *sse) delta(index int, typ, field string, v vtext, a, b int) {
	if !s.blockEvent("content_block_delta", index) {
		return
	}
	s.w.WriteString(`,"delta":{"type":"`)
	s.w.WriteString(typ)
	s.w.WriteString(`","`)
	s.w.WriteString(field)
	s.w.WriteString(`":"`)
	v.writeRange(s.w, a, b)
	s.w.WriteString(`"}`)
	s.end()
}

// writeStream answers a streaming request; with midstream the stream is
// cut by an overloaded error event after a few text deltas, with early right
// after message_start.
func (e *Emulator) writeStream(ctx context.Context, w http.ResponseWriter, m *message, midstream, early bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s := &sse{ctx: ctx, w: bufio.NewWriterSize(w, 64<<10), rc: http.NewResponseController(w), sleep: e.opts.Sleep, delay: m.delay}
	s.err = s.rc.Flush() // headers go out before the first (possibly delayed) event

	if s.begin("message_start") {
		s.w.WriteString(`{"type":"message_start","message":`)
		m.writeHead(s.w)
		s.w.WriteString(`],"stop_reason":null,"stop_sequence":null,"usage":`)
		m.writeUsage(s.w, true, false)
		s.w.WriteString(`}`)
		s.end()
	}
	s.ping()
	if early {
		if s.begin("error") {
			s.w.WriteString(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}`)
			s.end()
		}
		return
	}

	blocks := m.blocks
	if midstream {
		text := newVText("Partial answer before the failure. ", 3, 0)
		for _, b := range blocks {
			if b.kind == kindText {
				text = b.text
			}
		}
		blocks = []block{{kind: kindText, text: text, deltas: 3}}
	}
	for i, b := range blocks {
		if s.blockEvent("content_block_start", i) {
			s.w.WriteString(`,"content_block":`)
			switch b.kind {
			case kindThinking:
				s.w.WriteString(`{"type":"thinking","thinking":"","signature":""}`)
			case kindRedacted:
				s.w.WriteString(`{"type":"redacted_thinking","data":`)
				quote(s.w, b.data)
				s.w.WriteString(`}`)
			case kindText:
				s.w.WriteString(`{"type":"text","text":""}`)
			case kindToolUse:
				s.w.WriteString(`{"type":"tool_use","id":`)
				quote(s.w, b.id)
				s.w.WriteString(`,"name":`)
				quote(s.w, b.name)
				s.w.WriteString(`,"input":{}}`)
			}
			s.end()
		}
		ranges := b.text.split(b.deltas)
		switch b.kind {
		case kindThinking:
			for _, r := range ranges {
				s.delta(i, "thinking_delta", "thinking", b.text, r[0], r[1])
			}
			s.delta(i, "signature_delta", "signature", vtext{base: b.signature, n: len(b.signature)}, 0, len(b.signature))
		case kindText:
			if midstream {
				ranges = ranges[:min(3, len(ranges))]
			}
			for _, r := range ranges {
				s.delta(i, "text_delta", "text", b.text, r[0], r[1])
			}
			if midstream {
				if s.begin("error") {
					s.w.WriteString(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}`)
					s.end()
				}
				return
			}
		case kindToolUse:
			s.delta(i, "input_json_delta", "partial_json", b.input, 0, 0)
			for _, r := range b.input.split(b.deltas) {
				s.delta(i, "input_json_delta", "partial_json", b.input, r[0], r[1])
			}
		}
		if s.blockEvent("content_block_stop", i) {
			s.end()
		}
	}
	if s.begin("message_delta") {
		s.w.WriteString(`{"type":"message_delta","delta":{"stop_reason":`)
		quote(s.w, m.stopReason)
		s.w.WriteString(`,"stop_sequence":null},"usage":`)
		m.writeUsage(s.w, false, true)
		s.end()
	}
	if s.begin("message_stop") {
		s.w.WriteString(`{"type":"message_stop"`)
		s.end()
	}
}
