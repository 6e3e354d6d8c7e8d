package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// renderer shows one assistant turn of `piauth chat`.
type renderer interface {
	// Delta is called for every stream event, as it arrives.
	Delta(d stream.Delta) error
	// Finish is called once after the stream: msg is what arrived (nil when
	// nothing did), err the turn's error as chat reports it.
	Finish(msg *stream.Message, err error) error
}

// newRenderer picks the renderer for the options: NDJSON with --json, else
// text, rendered as markdown on a terminal unless --raw.
func newRenderer(o *chatOptions) renderer {
	if o.JSON {
		enc := json.NewEncoder(o.IO.Out)
		enc.SetEscapeHTML(false)
		return &jsonRenderer{enc: enc, service: o.Service}
	}
	r := &textRenderer{
		out:      o.IO.Out,
		errOut:   o.IO.ErrOut,
		safeOut:  o.IO.OutTTY,
		safeErr:  o.IO.ErrTTY,
		live:     o.Stream,
		thinking: o.ShowThinking || o.IO.ErrTTY,
		dim:      o.IO.ErrScheme().Dim,
		labelled: -1,
	}
	if o.Stream && !o.IO.OutTTY {
		// A pipe or file gets whole lines: one write per line instead of one
		// per delta (a long answer has tens of thousands of deltas).
		r.lines = bufio.NewWriter(o.IO.Out)
		r.out = r.lines
	}
	if o.IO.OutTTY && !o.Raw {
		return newMarkdownRenderer(o, r)
	}
	return r
}

// textRenderer writes the answer's text to stdout, thinking (dimmed) and tool
// calls to stderr. With live set it writes each delta as it arrives (written
// through on a terminal, a line at a time to a pipe or file); else it prints
// the message at Finish.
// A line left open on one stream is ended before the other is written, so
// the two interleave cleanly on a terminal.
type textRenderer struct {
	out, errOut io.Writer
	live        bool // --stream
	thinking    bool // show thinking
	// safeOut, safeErr: the stream is a terminal, so remote text is written
	// through termsafe.Strip (no escape sequence from the model reaches it).
	safeOut, safeErr bool
	dim              func(a ...any) string

	outOpen, errOpen bool // the last line written to stdout / stderr is not ended
	labelled         int  // index of the thinking block under the last "thinking:" label, -1 none

	lines *bufio.Writer // line buffer in front of a non-terminal stdout, else nil
}

// flush writes out what the line buffer holds.
func (r *textRenderer) flush() error {
	if r.lines == nil {
		return nil
	}
	if err := r.lines.Flush(); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}

func (r *textRenderer) Delta(d stream.Delta) error {
	if !r.live {
		return nil
	}
	switch {
	case len(d.Text) > 0:
		return r.text(d.Text)
	case len(d.Thinking) > 0 && r.thinking:
		return r.think(d.Index, d.Thinking)
	case d.ToolUse != nil:
		return r.toolUse(d.ToolUse)
	}
	return nil
}

func (r *textRenderer) Finish(msg *stream.Message, _ error) error {
	if !r.live && msg != nil {
		for i := range msg.Content {
			b := &msg.Content[i]
			var err error
			switch b.Type {
			case "thinking":
				if r.thinking {
					err = r.think(i, []byte(b.Thinking))
				}
			case "text":
				err = r.text([]byte(b.Text))
			case "tool_use", "server_tool_use":
				err = r.toolUse(b)
			}
			if err != nil {
				return err
			}
		}
	}
	return r.endLines()
}

func (r *textRenderer) text(p []byte) error {
	if len(p) == 0 { // an empty text block (e.g. a stream cut right after its start)
		return nil
	}
	if err := r.endErr(); err != nil {
		return err
	}
	if r.safeOut {
		if p = termsafe.Strip(p); len(p) == 0 {
			return nil
		}
	}
	if _, err := r.out.Write(p); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	r.outOpen = p[len(p)-1] != '\n'
	if bytes.IndexByte(p, '\n') >= 0 {
		return r.flush()
	}
	return nil
}

// think writes thinking on stderr, each block under a "thinking:" label
// line, so that it reads apart from the answer without colour too.
func (r *textRenderer) think(index int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if err := r.endOut(); err != nil {
		return err
	}
	if index != r.labelled {
		if err := r.endErr(); err != nil {
			return err
		}
		if _, err := io.WriteString(r.errOut, r.dim("thinking:")+"\n"); err != nil {
			return err
		}
		r.labelled = index
	}
	if r.safeErr {
		if p = termsafe.Strip(p); len(p) == 0 {
			return nil
		}
	}
	if _, err := io.WriteString(r.errOut, r.dim(string(p))); err != nil {
		return err
	}
	r.errOpen = p[len(p)-1] != '\n'
	return nil
}

// toolUse prints "tool_use NAME {json}" on stderr.
func (r *textRenderer) toolUse(b *stream.Block) error {
	if err := r.endLines(); err != nil {
		return err
	}
	var input bytes.Buffer
	if json.Compact(&input, b.Input) != nil || input.Len() == 0 {
		input.Reset()
		input.WriteString("{}")
	}
	line := fmt.Sprintf("tool_use %s %s\n", b.Name, input.String())
	if r.safeErr {
		line = termsafe.String(line)
	}
	_, err := io.WriteString(r.errOut, line)
	return err
}

// endLines ends the lines left open on stdout and stderr.
func (r *textRenderer) endLines() error {
	if err := r.endOut(); err != nil {
		return err
	}
	return r.endErr()
}

// endOut ends a line left open on stdout and writes out the line buffer.
func (r *textRenderer) endOut() error {
	if r.outOpen {
		if _, err := io.WriteString(r.out, "\n"); err != nil {
			return err
		}
		r.outOpen = false
	}
	return r.flush()
}

// endErr ends a line left open on stderr.
func (r *textRenderer) endErr() error {
	if r.errOpen {
		if _, err := io.WriteString(r.errOut, "\n"); err != nil {
			return err
		}
		r.errOpen = false
	}
	return nil
}

// jsonRenderer writes `piauth chat --json` output: NDJSON on stdout, one
// object per line, each with a "type". The field names are stable:
//
//	{"type":"text_delta","index":0,"text":"Hel"}
//	{"type":"thinking_delta","index":0,"thinking":"Let me"}
//	{"type":"tool_use","index":1,"id":"toolu_…","name":"get_weather","input":{"city":"Paris"}}
//	{"type":"usage","usage":{USAGE}}                       (after message_start and message_delta)
//	{"type":"error","error_type":"overloaded_error","message":"Overloaded","status":529,"request_id":"req_…"}
//	{"type":"message","id":"msg_…","model":"claude-sonnet-4-5","content":[BLOCK…],
//	 "stop_reason":"end_turn","stop_sequence":"…","usage":{USAGE},"cost_usd":0.0123,
//	 "conversation_id":"7k3m9q2x4a"}
//
// USAGE is {"input_tokens","output_tokens","cache_creation_input_tokens",
// "cache_read_input_tokens"} plus, when reported, "cache_creation_5m_input_tokens",
// "cache_creation_1h_input_tokens", "thinking_tokens", "web_search_requests",
// "web_fetch_requests" (cumulative totals, the last one wins). BLOCK is a
// content block in the API's shape ({"type":"text","text"},
// {"type":"thinking","thinking","signature"}, {"type":"redacted_thinking","data"},
// {"type":"tool_use","id","name","input"}…), tool names as the caller defined
// them. "message" ends a successful turn; a failed one ends with "error"
// instead (error_type is the API's error type, or "truncated",
// "interrupted", "error"; status and request_id only for HTTP errors).
// stop_sequence is omitted when empty; cost_usd is null for a model without
// a known price; conversation_id (the id -c/--cid take) only when the turn
// is stored.
type jsonRenderer struct {
	enc          *json.Encoder
	service      *stream.Service // prices the final message
	conversation string          // the id the turn is stored under, "" when not stored
}

type (
	textDeltaEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Text  string `json:"text"`
	}
	thinkingDeltaEvent struct {
		Type     string `json:"type"`
		Index    int    `json:"index"`
		Thinking string `json:"thinking"`
	}
	toolUseEvent struct {
		Type  string          `json:"type"`
		Index int             `json:"index"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	usageEvent struct {
		Type  string       `json:"type"`
		Usage stream.Usage `json:"usage"`
	}
	errorEvent struct {
		Type      string `json:"type"`
		ErrorType string `json:"error_type"`
		Message   string `json:"message"`
		Status    int    `json:"status,omitempty"`
		RequestID string `json:"request_id,omitempty"`
	}
	messageEvent struct {
		Type         string         `json:"type"`
		ID           string         `json:"id,omitempty"`
		Model        string         `json:"model"`
		Content      []stream.Block `json:"content"`
		StopReason   string         `json:"stop_reason"`
		StopSequence string         `json:"stop_sequence,omitempty"`
		Usage        stream.Usage   `json:"usage"`
		CostUSD      *float64       `json:"cost_usd"`
		Conversation string         `json:"conversation_id,omitempty"`
	}
)

func (r *jsonRenderer) Delta(d stream.Delta) error {
	var ev any
	switch {
	case len(d.Text) > 0:
		ev = textDeltaEvent{"text_delta", d.Index, string(d.Text)}
	case len(d.Thinking) > 0:
		ev = thinkingDeltaEvent{"thinking_delta", d.Index, string(d.Thinking)}
	case d.ToolUse != nil:
		input := d.ToolUse.Input
		if len(input) == 0 {
			input = json.RawMessage("{}")
		}
		ev = toolUseEvent{"tool_use", d.Index, d.ToolUse.ID, d.ToolUse.Name, input}
	}
	if ev != nil {
		if err := r.enc.Encode(ev); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
	}
	if d.Usage != nil {
		if err := r.enc.Encode(usageEvent{"usage", *d.Usage}); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
	}
	return nil
}

func (r *jsonRenderer) Finish(msg *stream.Message, err error) error {
	if err != nil {
		return r.enc.Encode(errorEventFor(err))
	}
	if msg == nil {
		return nil
	}
	ev := messageEvent{Type: "message", ID: msg.ID, Model: msg.Model, Content: msg.Content,
		StopReason: msg.StopReason, StopSequence: msg.StopSequence, Usage: msg.Usage, Conversation: r.conversation}
	if ev.Content == nil {
		ev.Content = []stream.Block{}
	}
	if usd, ok := r.service.Cost(msg.Model, msg.Usage); ok {
		ev.CostUSD = &usd
	}
	return r.enc.Encode(ev)
}

// errorEventFor describes err (as returned by chatError) for --json.
func errorEventFor(err error) errorEvent {
	ev := errorEvent{Type: "error", ErrorType: "error", Message: err.Error()}
	var apiErr *stream.APIError
	var se *stream.StreamError
	switch {
	case errors.As(err, new(*interruptedError)):
		ev.ErrorType = "interrupted"
	case errors.As(err, &apiErr):
		ev.ErrorType, ev.Message = apiErr.Type, secret.MaskAll(apiErr.Message)
		ev.Status, ev.RequestID = apiErr.Status, apiErr.RequestID
		if ev.ErrorType == "" {
			ev.ErrorType = "http_error"
		}
	case errors.As(err, &se):
		ev.ErrorType, ev.Message = se.Type, secret.MaskAll(se.Message)
	case errors.Is(err, stream.ErrTruncated):
		ev.ErrorType = "truncated"
	}
	return ev
}

// interruptedError is a turn stopped by Ctrl-C (ctx cancelled). It unwraps
// to the context's error, which exits 130.
type interruptedError struct{ cause error }

func (e *interruptedError) Error() string { return "interrupted" }
func (e *interruptedError) Unwrap() error { return e.cause }

// apiError reports an HTTP error of the Messages API as
// "TYPE: MESSAGE (request-id req_…)", with a hint when one helps.
type apiError struct {
	err  *stream.APIError
	hint string
}

func (e *apiError) Error() string {
	typ := e.err.Type
	if typ == "" {
		typ = fmt.Sprintf("HTTP %d", e.err.Status)
	}
	s := typ + ": " + secret.MaskAll(e.err.Message)
	if e.err.RequestID != "" {
		s += " (request-id " + e.err.RequestID + ")"
	}
	if e.hint != "" {
		s += "; " + e.hint
	}
	return s
}

func (e *apiError) Unwrap() error { return e.err }

// streamFailure reports an `event: error` received mid-stream.
type streamFailure struct{ err *stream.StreamError }

func (e *streamFailure) Error() string {
	return "stream error: " + e.err.Type + ": " + secret.MaskAll(e.err.Message)
}

func (e *streamFailure) Unwrap() error { return e.err }

// chatError turns the error of a turn into what chat reports: Ctrl-C becomes
// an *interruptedError (exit 130), API errors are rendered with their type and
// request id (refused credentials with a hint to log in), mid-stream
// and truncation errors say what happened. Errors that already choose an exit
// code are kept as they are.
func chatError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return &interruptedError{cause: ctx.Err()}
	}
	var apiErr *stream.APIError
	var se *stream.StreamError
	switch {
	case errors.As(err, &apiErr):
		return &apiError{err: apiErr, hint: rotate.Hint(apiErr)}
	case errors.As(err, &se):
		return &streamFailure{err: se}
	case errors.Is(err, stream.ErrTruncated):
		return fmt.Errorf("the answer was cut short: %w", err)
	}
	var ue *url.Error
	if code := exitCode(err); code != exitError && errors.As(err, &ue) && exitCode(ue.Err) == code {
		return ue.Err // "credential: not logged in…", not `Post "URL": …`
	}
	return err
}
