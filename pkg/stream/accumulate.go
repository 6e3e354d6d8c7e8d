package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// blockState is a block under construction.
type blockState struct {
	b       Block
	text    []byte // text or thinking
	sig     []byte
	json    []byte // joined partial_json
	stopped bool
}

// Accumulator builds a Message from stream events. The zero value is ready.
type Accumulator struct {
	// Tools, when set, maps tool names shaped by Shape back to the caller's names.
	Tools *ToolNames
	// Discard, when set, keeps no text or thinking: every delta is still
	// reported (valid until the next Add), but the Message's text and
	// thinking are empty. Memory then stays constant however long the answer
	// (piauth chat --stream prints as it goes and needs nothing after).
	Discard bool

	started, done bool
	id, model     string
	blocks        []blockState
	stopReason    string
	stopSequence  string
	usage         Usage
	events        int
}

// Add applies one event. Unknown events and ping are ignored. An `event:
// error` returns a *StreamError; malformed or out-of-order events return an
// error and leave the message as it was.
func (a *Accumulator) Add(ev Event) (Delta, error) {
	a.events++
	name := ev.Name
	if name == "content_block_delta" || name == "" || name == "message" {
		if d, ok, err := a.fastDelta(ev.Data); ok || err != nil {
			return d, err
		}
	}
	switch name {
	case "ping":
		return Delta{}, nil
	case "", "message":
		// No event: line; fall back to the data's type.
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(ev.Data, &t) != nil || t.Type == "" || t.Type == "message" {
			return Delta{}, nil
		}
		name = t.Type
	case "message_start", "content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop", "error":
	default:
		return Delta{}, nil // unknown event: ignored
	}
	var w wireEvent
	if err := json.Unmarshal(ev.Data, &w); err != nil {
		return Delta{}, fmt.Errorf("event %s: %w", name, err)
	}
	if name == "error" {
		se := &StreamError{Type: "api_error", Message: string(ev.Data)}
		if w.Error != nil {
			se.Type, se.Message = w.Error.Type, w.Error.Message
		}
		return Delta{}, se
	}
	if name != "message_start" && !a.started {
		return Delta{}, fmt.Errorf("event %s before message_start", name)
	}
	if a.done {
		return Delta{}, fmt.Errorf("event %s after message_stop", name)
	}
	switch name {
	case "message_start":
		return a.messageStart(&w)
	case "content_block_start":
		return a.blockStart(&w)
	case "content_block_delta":
		return a.blockDelta(&w)
	case "content_block_stop":
		return a.blockStop(&w)
	case "message_delta":
		d := Delta{}
		if w.Delta != nil {
			if w.Delta.StopReason != nil {
				a.stopReason = *w.Delta.StopReason
				d.StopReason = a.stopReason
			}
			if w.Delta.StopSequence != nil {
				a.stopSequence = *w.Delta.StopSequence
			}
		}
		if w.Usage != nil {
			a.usage.apply(w.Usage)
			u := a.usage
			d.Usage = &u
		}
		return d, nil
	default: // message_stop
		a.done = true
		return Delta{Done: true}, nil
	}
}

// fastDelta handles a compact string content_block_delta without
// encoding/json. ok=false means the general path must decode the event.
func (a *Accumulator) fastDelta(data []byte) (Delta, bool, error) {
	idx, kind, raw, escaped, ok := parseStringDelta(data)
	if !ok || !a.started || a.done {
		return Delta{}, false, nil
	}
	bs, err := a.open(idx, "content_block_delta")
	if err != nil {
		return Delta{}, true, err
	}
	var dst *[]byte
	switch {
	case kind == fastText && bs.b.Type == "text", kind == fastThinking && bs.b.Type == "thinking":
		dst = &bs.text
		if a.Discard {
			bs.text = bs.text[:0]
		}
	case kind == fastJSON && isToolBlock(bs.b.Type):
		dst = &bs.json
	default:
		return Delta{}, false, nil // let the general path report the mismatch
	}
	start := len(*dst)
	if escaped {
		var ok bool
		if *dst, ok = appendUnescaped(*dst, raw); !ok {
			*dst = (*dst)[:start]
			return Delta{}, false, nil
		}
	} else {
		*dst = append(*dst, raw...)
	}
	d := Delta{Index: idx}
	added := (*dst)[start:len(*dst):len(*dst)]
	switch kind {
	case fastText:
		d.Text = added
	case fastThinking:
		d.Thinking = added
	}
	return d, true, nil
}

func isToolBlock(t string) bool { return t == "tool_use" || t == "server_tool_use" }

// open returns the started, not yet stopped block at idx.
func (a *Accumulator) open(idx int, event string) (*blockState, error) {
	if idx < 0 || idx >= len(a.blocks) {
		return nil, fmt.Errorf("%s for unknown content block %d (have %d)", event, idx, len(a.blocks))
	}
	bs := &a.blocks[idx]
	if bs.stopped {
		return nil, fmt.Errorf("%s for content block %d after its content_block_stop", event, idx)
	}
	return bs, nil
}

func (a *Accumulator) messageStart(w *wireEvent) (Delta, error) {
	if a.started {
		return Delta{}, errors.New("second message_start")
	}
	if w.Message == nil {
		return Delta{}, errors.New("message_start without message")
	}
	a.started = true
	a.id, a.model = w.Message.ID, w.Message.Model
	if w.Message.Usage != nil {
		a.usage.apply(w.Message.Usage)
	}
	u := a.usage
	return Delta{Usage: &u}, nil
}

func (a *Accumulator) blockStart(w *wireEvent) (Delta, error) {
	if w.Index == nil {
		return Delta{}, errors.New("content_block_start without index")
	}
	if *w.Index != len(a.blocks) {
		return Delta{}, fmt.Errorf("content_block_start for block %d, expected %d", *w.Index, len(a.blocks))
	}
	var wb wireBlock
	if err := json.Unmarshal(w.ContentBlock, &wb); err != nil || wb.Type == "" {
		return Delta{}, fmt.Errorf("content_block_start %d: invalid content_block: %s", *w.Index, errOr(err, "no type"))
	}
	bs := blockState{b: Block{Type: wb.Type}}
	switch wb.Type {
	case "text":
		bs.text = append(bs.text, wb.Text...)
		bs.b.Citations = wb.Citations
	case "thinking":
		bs.text = append(bs.text, wb.Thinking...)
		bs.sig = append(bs.sig, wb.Signature...)
	case "redacted_thinking":
		bs.b.Data = wb.Data
	case "tool_use", "server_tool_use":
		bs.b.ID, bs.b.Name, bs.b.Input = wb.ID, a.Tools.Original(wb.Name), wb.Input
	default:
		bs.b.Raw = append(json.RawMessage(nil), w.ContentBlock...)
	}
	a.blocks = append(a.blocks, bs)
	return Delta{Index: *w.Index}, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func (a *Accumulator) blockDelta(w *wireEvent) (Delta, error) {
	if w.Index == nil || w.Delta == nil {
		return Delta{}, errors.New("content_block_delta without index or delta")
	}
	idx := *w.Index
	bs, err := a.open(idx, "content_block_delta")
	if err != nil {
		return Delta{}, err
	}
	d := Delta{Index: idx}
	mismatch := func() (Delta, error) {
		return Delta{}, fmt.Errorf("content_block_delta %s for %s block %d", w.Delta.Type, bs.b.Type, idx)
	}
	switch w.Delta.Type {
	case "text_delta":
		if bs.b.Type != "text" {
			return mismatch()
		}
		d.Text = a.appendText(bs, w.Delta.Text)
	case "thinking_delta":
		if bs.b.Type != "thinking" {
			return mismatch()
		}
		d.Thinking = a.appendText(bs, w.Delta.Thinking)
	case "signature_delta":
		if bs.b.Type != "thinking" {
			return mismatch()
		}
		bs.sig = append(bs.sig, w.Delta.Signature...)
	case "input_json_delta":
		if !isToolBlock(bs.b.Type) {
			return mismatch()
		}
		bs.json = append(bs.json, w.Delta.PartialJSON...)
	case "citations_delta":
		if bs.b.Type != "text" {
			return mismatch()
		}
		bs.b.Citations = append(bs.b.Citations, append(json.RawMessage(nil), w.Delta.Citation...))
	}
	return d, nil // unknown delta types are ignored
}

// appendText adds a text or thinking delta to block bs (after dropping what
// it held, in Discard mode) and returns the delta's bytes within it.
func (a *Accumulator) appendText(bs *blockState, delta string) []byte {
	if a.Discard {
		bs.text = bs.text[:0]
	}
	start := len(bs.text)
	bs.text = append(bs.text, delta...)
	return bs.text[start:len(bs.text):len(bs.text)]
}

func (a *Accumulator) blockStop(w *wireEvent) (Delta, error) {
	if w.Index == nil {
		return Delta{}, errors.New("content_block_stop without index")
	}
	idx := *w.Index
	bs, err := a.open(idx, "content_block_stop")
	if err != nil {
		return Delta{}, err
	}
	if isToolBlock(bs.b.Type) && len(bs.json) > 0 {
		if !json.Valid(bs.json) {
			return Delta{}, fmt.Errorf("content block %d (%s %q): invalid input JSON %q", idx, bs.b.Type, bs.b.Name, truncate(bs.json, 80))
		}
		bs.b.Input = append(json.RawMessage(nil), bs.json...)
	}
	bs.stopped = true
	d := Delta{Index: idx}
	if isToolBlock(bs.b.Type) {
		b := a.block(idx)
		d.ToolUse = &b
	}
	return d, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// apply overwrites the fields present in w (usage is cumulative).
func (u *Usage) apply(w *wireUsage) {
	set := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&u.InputTokens, w.InputTokens)
	set(&u.OutputTokens, w.OutputTokens)
	set(&u.CacheCreationInputTokens, w.CacheCreationInputTokens)
	set(&u.CacheReadInputTokens, w.CacheReadInputTokens)
	if c := w.CacheCreation; c != nil {
		set(&u.CacheCreation5m, c.Ephemeral5m)
		set(&u.CacheCreation1h, c.Ephemeral1h)
	}
	if o := w.OutputTokensDetails; o != nil {
		set(&u.ThinkingTokens, o.ThinkingTokens)
	}
	if s := w.ServerToolUse; s != nil {
		set(&u.WebSearchRequests, s.WebSearchRequests)
		set(&u.WebFetchRequests, s.WebFetchRequests)
	}
}

// block materialises block i.
func (a *Accumulator) block(i int) Block {
	bs := &a.blocks[i]
	b := bs.b
	switch b.Type {
	case "text":
		if !a.Discard {
			b.Text = string(bs.text)
		}
	case "thinking":
		if !a.Discard {
			b.Thinking = string(bs.text)
		}
		b.Signature = string(bs.sig)
	}
	return b
}

// Done reports whether message_stop arrived.
func (a *Accumulator) Done() bool { return a.done }

// Usage returns the usage so far.
func (a *Accumulator) Usage() Usage { return a.usage }

// Message returns the message built so far (complete once Done). Tool blocks
// that never stopped keep the input from their content_block_start.
func (a *Accumulator) Message() *Message {
	m := &Message{ID: a.id, Model: a.model, StopReason: a.stopReason, StopSequence: a.stopSequence, Usage: a.usage}
	m.Content = make([]Block, len(a.blocks))
	for i := range a.blocks {
		m.Content[i] = a.block(i)
	}
	return m
}

// Finish returns nil after message_stop, else ErrTruncated wrapped with what
// arrived.
func (a *Accumulator) Finish() error {
	if a.done {
		return nil
	}
	return fmt.Errorf("%w (after %d events, %d content blocks, output_tokens %s)",
		ErrTruncated, a.events, len(a.blocks), strconv.FormatInt(a.usage.OutputTokens, 10))
}

// ReadMessage decodes and accumulates the SSE stream r until message_stop or
// EOF, calling onDelta (if non-nil) for every event's Delta. It returns the
// message so far together with the first error: a read error, an error from
// Add or onDelta, or ErrTruncated. tools, if non-nil, maps tool names back.
func ReadMessage(r io.Reader, tools *ToolNames, onDelta func(Delta) error) (*Message, error) {
	acc := Accumulator{Tools: tools}
	return acc.Consume(r, onDelta)
}

// Consume is ReadMessage with a configured Accumulator (Tools, Discard): it
// decodes r and adds every event until message_stop or EOF.
func (a *Accumulator) Consume(r io.Reader, onDelta func(Delta) error) (*Message, error) {
	dec := NewDecoder(r)
	for !a.Done() && dec.Next() {
		d, err := a.Add(dec.Event())
		if err != nil {
			return a.Message(), err
		}
		if onDelta != nil {
			if err := onDelta(d); err != nil {
				return a.Message(), err
			}
		}
	}
	if err := dec.Err(); err != nil {
		return a.Message(), err
	}
	return a.Message(), a.Finish()
}
