package emulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

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
