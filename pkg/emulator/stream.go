package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// vtext is base repeated up to n bytes, never materialised, so that huge
// replies cost no memory.
type vtext struct {
	base string
	n    int
}

func newVText(base string, repeat, size int) vtext {
	n := len(base) * max(repeat, 1)
	if size > 0 {
		n = size
	}
	if base == "" {
		n = 0
	}
	v := vtext{base: base, n: n}
	for v.n > 0 && !v.runeStart(v.n) {
		v.n-- // never cut a rune in half
	}
	return v
}

func (v vtext) runeStart(p int) bool {
	return p >= v.n || p%len(v.base) == 0 || utf8.RuneStart(v.base[p%len(v.base)])
}

// split returns up to k rune-aligned, non-empty ranges covering v.
func (v vtext) split(k int) [][2]int {
	if v.n == 0 {
		return nil
	}
	k = max(min(k, v.n), 1)
	out := make([][2]int, 0, k)
	prev := 0
	for i := 1; i <= k; i++ {
		p := v.n * i / k
		for !v.runeStart(p) {
			p++
		}
		if p > prev {
			out = append(out, [2]int{prev, p})
			prev = p
		}
	}
	return out
}

// writeRange writes bytes [a,b) of v JSON-escaped (without quotes).
func (v vtext) writeRange(w *bufio.Writer, a, b int) {
	for a < b {
		off := a % len(v.base)
		end := min(len(v.base), off+(b-a))
		escape(w, v.base[off:end])
		a += end - off
	}
}

const hexDigits = "0123456789abcdef"

// escape writes s as the inside of a JSON string.
func escape(w *bufio.Writer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			w.WriteByte('\\')
			w.WriteByte(c)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		default:
			w.WriteString(`\u00`)
			w.WriteByte(hexDigits[c>>4])
			w.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	w.WriteString(s[start:])
}

func quote(w *bufio.Writer, s string) {
	w.WriteByte('"')
	escape(w, s)
	w.WriteByte('"')
}

type blockKind int

const (
	kindThinking blockKind = iota
	kindRedacted
	kindText
	kindToolUse
)

type block struct {
	kind      blockKind
	text      vtext // text or thinking
	deltas    int
	signature string
	data      string // redacted_thinking
	id, name  string
	input     vtext // compact tool input JSON
}

// message is a planned assistant reply.
type message struct {
	id, model  string
	blocks     []block
	usage      Usage
	stopReason string
	delay      time.Duration
}

// newMessage plans the reply to req from the scripted Reply.
func (e *Emulator) newMessage(req *messagesRequest, r Reply) *message {
	m := &message{id: "msg_01" + e.randString(22), model: req.Model, stopReason: r.StopReason,
		delay: time.Duration(r.EventDelayMS) * time.Millisecond}
	if r.Model != "" {
		m.model = r.Model
	}
	var out int64
	if r.Thinking != "" {
		sig := r.Signature
		if sig == "" {
			sig = "EmuSig" + e.randString(58) + "=="
		}
		t := newVText(r.Thinking, 1, 0)
		m.blocks = append(m.blocks, block{kind: kindThinking, text: t, deltas: cmpOr(r.ThinkingDeltas, 3), signature: sig})
		out += int64(t.n)
	}
	if r.RedactedThinking != "" {
		m.blocks = append(m.blocks, block{kind: kindRedacted, data: r.RedactedThinking})
	}
	if !r.NoText {
		t := newVText(cmpOr(r.Text, DefaultText), r.Repeat, r.Size)
		m.blocks = append(m.blocks, block{kind: kindText, text: t, deltas: cmpOr(r.Deltas, 3)})
		out += int64(t.n)
	}
	var sent []string
	for _, t := range req.Tools {
		sent = append(sent, t.Name)
	}
	for _, tc := range r.ToolCalls {
		in := []byte("{}")
		if len(tc.Input) > 0 {
			var buf bytes.Buffer
			if json.Compact(&buf, tc.Input) == nil {
				in = buf.Bytes()
			}
		}
		id := tc.ID
		if id == "" {
			id = "toolu_01" + e.randString(22)
		}
		iv := newVText(string(in), 1, 0)
		m.blocks = append(m.blocks, block{kind: kindToolUse, id: id, name: echoName(tc.Name, sent), input: iv, deltas: cmpOr(tc.Chunks, 3)})
		out += int64(iv.n)
	}
	if m.stopReason == "" {
		m.stopReason = "end_turn"
		if len(r.ToolCalls) > 0 {
			m.stopReason = "tool_use"
		}
	}
	if r.Usage != nil {
		m.usage = *r.Usage
	}
	if m.usage.InputTokens == 0 {
		m.usage.InputTokens = 25
	}
	if m.usage.OutputTokens == 0 {
		m.usage.OutputTokens = out/4 + 1
	}
	return m
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// echoName returns the tool name as the client spelled it: the scripted
// name itself, or the client's tool whose name ends in "__"+name (mcp__app__name);
// with no scripted name, the client's first tool.
func echoName(name string, sent []string) string {
	if name == "" {
		if len(sent) > 0 {
			return sent[0]
		}
		return "Read"
	}
	if slices.Contains(sent, name) {
		return name
	}
	for _, s := range sent {
		if strings.HasSuffix(s, "__"+name) {
			return s
		}
	}
	return name
}

// writeUsage writes the usage object: with cache_creation and service_tier
// unless delta (message_delta's cumulative form), with the real
// output_tokens unless start (message_start carries a placeholder).
func (m *message) writeUsage(w *bufio.Writer, start, delta bool) {
	u := m.usage
	out := u.OutputTokens
	if start {
		out = 1
	}
	w.WriteString(`{"input_tokens":`)
	w.WriteString(strconv.FormatInt(u.InputTokens, 10))
	w.WriteString(`,"cache_creation_input_tokens":`)
	w.WriteString(strconv.FormatInt(u.CacheCreation5m+u.CacheCreation1h, 10))
	w.WriteString(`,"cache_read_input_tokens":`)
	w.WriteString(strconv.FormatInt(u.CacheRead, 10))
	if !delta {
		w.WriteString(`,"cache_creation":{"ephemeral_5m_input_tokens":`)
		w.WriteString(strconv.FormatInt(u.CacheCreation5m, 10))
		w.WriteString(`,"ephemeral_1h_input_tokens":`)
		w.WriteString(strconv.FormatInt(u.CacheCreation1h, 10))
		w.WriteString(`}`)
	}
	w.WriteString(`,"output_tokens":`)
	w.WriteString(strconv.FormatInt(out, 10))
	if !delta {
		w.WriteString(`,"service_tier":"standard"`)
	}
	w.WriteString(`}`)
}

// writeHead writes the message object up to and including `"content":[`.
func (m *message) writeHead(w *bufio.Writer) {
	w.WriteString(`{"model":`)
	quote(w, m.model)
	w.WriteString(`,"id":`)
	quote(w, m.id)
	w.WriteString(`,"type":"message","role":"assistant","content":[`)
}

// writeJSONMessage answers a non-streaming request.
func (e *Emulator) writeJSONMessage(w http.ResponseWriter, m *message) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	m.writeHead(bw)
	for i, b := range m.blocks {
		if i > 0 {
			bw.WriteByte(',')
		}
		switch b.kind {
		case kindThinking:
			bw.WriteString(`{"type":"thinking","thinking":"`)
			b.text.writeRange(bw, 0, b.text.n)
			bw.WriteString(`","signature":`)
			quote(bw, b.signature)
		case kindRedacted:
			bw.WriteString(`{"type":"redacted_thinking","data":`)
			quote(bw, b.data)
		case kindText:
			bw.WriteString(`{"type":"text","text":"`)
			b.text.writeRange(bw, 0, b.text.n)
			bw.WriteString(`"`)
		case kindToolUse:
			bw.WriteString(`{"type":"tool_use","id":`)
			quote(bw, b.id)
			bw.WriteString(`,"name":`)
			quote(bw, b.name)
			bw.WriteString(`,"input":`)
			bw.WriteString(b.input.base)
		}
		bw.WriteByte('}')
	}
	bw.WriteString(`],"stop_reason":`)
	quote(bw, m.stopReason)
	bw.WriteString(`,"stop_sequence":null,"usage":`)
	m.writeUsage(bw, false, false)
	bw.WriteString("}\n")
	_ = bw.Flush()
}

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
