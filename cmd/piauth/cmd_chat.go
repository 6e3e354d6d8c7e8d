package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/stream"
)

// Chat defaults. The default model is data (the Service's default_model,
// overridable), and PIAUTH_MODEL changes it too.
const (
	defaultChatMaxTokens = 4096
	minThinkingBudget    = 1024 // the API's minimum thinking budget
)

// chatOptions are the inputs of `piauth chat`.
type chatOptions struct {
	IO *IOStreams
	// Messages builds the authenticated Messages client (Factory.MessagesClient).
	Messages func(ctx context.Context, o messagesOptions) (*messagesClient, error)
	// Service resolves model aliases and prices answers (Factory.Service).
	Service *stream.Service
	// Ledger records every answer (Factory.Ledger; nil: off).
	Ledger *ledgerSink

	Args         []string // prompt words
	Model        string
	System       string
	MaxTokens    int
	MaxTokensSet bool // --max-tokens was given (else it grows to fit --thinking)
	Thinking     int  // thinking budget, 0 = off
	ToolsFile    string
	Stream       bool
	JSON         bool
	ShowThinking bool
	Interactive  bool
	Wait         bool
	SwitchAt     float64 // --switch-at percent (0: PIAUTH_SWITCH_AT)
	Raw          bool    // --raw: the answer's markdown as it came, even on a terminal
	Width        int     // markdown word-wrap width (0: the terminal's)
	HistoryFile  string  // the interactive line history ("": in memory only)
}

func newChatCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:      "chat",
		Usage:     "talk to Claude over the Messages API",
		ArgsUsage: "[PROMPT…]",
		Description: `Sends PROMPT (the arguments, with piped stdin prepended and a blank line
between them) with the pool's active key, or auth.json's login, and prints the
answer. Without a prompt and with a terminal on stdin it starts an interactive
conversation (-i forces it; /exit or EOF ends it).

Without --stream the answer is still streamed from the API but printed once
complete. Thinking goes to stderr (dimmed) with --show-thinking or when stderr
is a terminal; tool calls are shown on stderr as "tool_use NAME {json}" and
end the run with stop_reason tool_use (running the tool is the caller's job).
The last stderr line is the accounting, e.g.
  in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0123 · 🔑 2/3
--json writes one JSON object per line instead (see the README).

-m takes a model id or an alias (opus, sonnet, haiku, fable; see 'piauth
models'); a retired model is refused with its replacement named. The default
is the alias sonnet ($PIAUTH_MODEL changes it); --max-tokens defaults to 4096,
raised above --thinking when only --thinking is given.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "stream", Usage: "print the answer as it arrives"},
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "`MODEL` id or alias (default: sonnet) [$PIAUTH_MODEL]"},
			&cli.StringFlag{Name: "system", Aliases: []string{"s"}, Usage: "system `PROMPT`"},
			&cli.IntFlag{Name: "max-tokens", Value: defaultChatMaxTokens, Usage: "maximum output `TOKENS`"},
			&cli.IntFlag{Name: "thinking", Usage: "extended thinking budget in `TOKENS` (≥ 1024, 0 = off)"},
			&cli.StringFlag{Name: "tools", Usage: "`FILE` with a JSON array of Anthropic tool definitions"},
			&cli.BoolFlag{Name: "json", Usage: "write NDJSON events and the final message on stdout"},
			&cli.BoolFlag{Name: "show-thinking", Usage: "show thinking on stderr even when it is not a terminal"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "multi-turn conversation, one prompt per line"},
			&cli.BoolFlag{Name: "wait", Usage: "when every pooled key is rate-limited, wait for the first to free"},
			&cli.BoolFlag{Name: "raw", Usage: "print the answer's markdown as it came, even on a terminal"},
			&cli.Float64Flag{Name: "switch-at", Usage: "start new requests on the key with the most headroom once the active key reports `PERCENT` used (1-100) [$PIAUTH_SWITCH_AT]"},
		},
		Action: func(c *cli.Context) error {
			svc, err := f.Service()
			if err != nil {
				return err
			}
			opts := &chatOptions{
				IO:           f.IO,
				Messages:     f.MessagesClient,
				Service:      svc,
				Ledger:       f.Ledger(c.Context),
				Args:         c.Args().Slice(),
				Model:        c.String("model"),
				System:       c.String("system"),
				MaxTokens:    c.Int("max-tokens"),
				MaxTokensSet: c.IsSet("max-tokens"),
				Thinking:     c.Int("thinking"),
				ToolsFile:    c.String("tools"),
				Stream:       c.Bool("stream"),
				JSON:         c.Bool("json"),
				ShowThinking: c.Bool("show-thinking"),
				Interactive:  c.Bool("interactive"),
				Wait:         c.Bool("wait"),
				SwitchAt:     c.Float64("switch-at"),
				Raw:          c.Bool("raw"),
				HistoryFile:  f.chatHistoryPath(),
			}
			if opts.Model == "" {
				opts.Model = f.Getenv("PIAUTH_MODEL")
			}
			return chatRun(c.Context, opts)
		},
	}
}

// chatRun validates the options, reads the prompt and runs one turn, or the
// interactive loop.
func chatRun(ctx context.Context, opts *chatOptions) error {
	defer opts.Ledger.Close()
	if err := opts.resolveModel(); err != nil {
		return err
	}
	if err := opts.checkLimits(); err != nil {
		return err
	}
	tools, err := loadTools(opts.ToolsFile)
	if err != nil {
		return err
	}
	prompt, interactive, err := opts.prompt()
	if err != nil {
		return err
	}
	client, err := opts.Messages(ctx, messagesOptions{Wait: opts.Wait, SwitchAt: opts.SwitchAt})
	if err != nil {
		return err
	}
	s := &chatSession{opts: opts, client: client, tools: tools}
	if interactive {
		return s.loop(ctx, prompt)
	}
	s.discard = opts.Stream && !opts.JSON
	_, err = s.turn(ctx, prompt)
	return err
}

// resolveModel turns the model option (an id, an alias, or "" for the
// default) into the id sent; a retired model is a usage error naming its
// replacement. An id the table does not know is sent as given: the API may
// know newer models.
func (o *chatOptions) resolveModel() error {
	if o.Service == nil {
		o.Service = stream.Builtin()
	}
	name := o.Model
	if name == "" {
		name = o.Service.DefaultModel()
	}
	m, err := o.Service.Resolve(name)
	if err != nil {
		return usagef("model %w", err)
	}
	o.Model = m.ID
	return nil
}

// checkLimits validates --max-tokens and --thinking, raising the default
// max tokens above the thinking budget.
func (o *chatOptions) checkLimits() error {
	switch {
	case o.MaxTokens <= 0:
		return usagef("--max-tokens must be positive")
	case o.Thinking < 0, o.Thinking > 0 && o.Thinking < minThinkingBudget:
		return usagef("--thinking must be at least %d tokens (or 0 for off)", minThinkingBudget)
	case o.Thinking >= o.MaxTokens && !o.MaxTokensSet:
		o.MaxTokens = o.Thinking + defaultChatMaxTokens
	case o.Thinking >= o.MaxTokens:
		return usagef("--max-tokens (%d) must exceed --thinking (%d)", o.MaxTokens, o.Thinking)
	}
	return nil
}

// prompt builds the first prompt. Piped stdin comes first, then a blank line,
// then the arguments (as llm does). interactive is true with -i, or with
// neither arguments nor piped stdin; then stdin is left for the loop and the
// arguments, if any, are the first turn.
func (o *chatOptions) prompt() (prompt string, interactive bool, err error) {
	args := strings.TrimSpace(strings.Join(o.Args, " "))
	switch {
	case o.Interactive:
		return args, true, nil
	case o.IO.InTTY && args == "":
		return "", true, nil
	case o.IO.InTTY:
		return args, false, nil
	}
	in, err := io.ReadAll(o.IO.In)
	if err != nil {
		return "", false, fmt.Errorf("read stdin: %w", err)
	}
	parts := make([]string, 0, 2)
	for _, p := range []string{strings.TrimSpace(string(in)), args} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "", false, usagef("empty prompt: give it as arguments or on stdin")
	}
	return strings.Join(parts, "\n\n"), false, nil
}

// loadTools reads and validates --tools FILE: a JSON array of tool
// definitions, each with a name and, for client tools, an input_schema
// object (server tools, which have a type such as web_search_20250305, need
// only a name). It returns the compacted array, or nil without a file.
func loadTools(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--tools: %w", err)
	}
	var defs []map[string]json.RawMessage
	if err := json.Unmarshal(data, &defs); err != nil {
		return nil, usagef("--tools %s: not a JSON array of tool definitions: %w", path, err)
	}
	if len(defs) == 0 {
		return nil, usagef("--tools %s: the array holds no tools", path)
	}
	for i, d := range defs {
		var name, typ string
		if json.Unmarshal(d["name"], &name) != nil || name == "" {
			return nil, usagef("--tools %s: tool %d has no name", path, i+1)
		}
		_ = json.Unmarshal(d["type"], &typ)
		schema := bytes.TrimSpace(d["input_schema"])
		if (typ == "" || typ == "custom") && (len(schema) == 0 || schema[0] != '{') {
			return nil, usagef("--tools %s: tool %q needs an input_schema object", path, name)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return nil, usagef("--tools %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

// chatSession holds a conversation: the client, the tools and the turns so far.
type chatSession struct {
	opts    *chatOptions
	client  *messagesClient
	tools   json.RawMessage
	history []json.RawMessage // user and assistant turns, in order
	// discard: a single --stream turn in text mode prints the answer as it
	// arrives and needs nothing of it afterwards, so its text is not kept
	// (constant memory however long the answer).
	discard bool
}

// turn sends prompt after the history, renders the answer and returns it.
// The history is not changed (loop decides what to keep).
func (s *chatSession) turn(ctx context.Context, prompt string) (*stream.Message, error) {
	o := s.opts
	params := stream.Params{
		Model:     o.Model,
		System:    o.System,
		MaxTokens: o.MaxTokens,
		Thinking:  o.Thinking,
		Messages:  slices.Concat(s.history, []json.RawMessage{stream.UserMessage(prompt)}),
		Tools:     s.tools,
		Stream:    true, // always streamed; without --stream the text is printed at the end
	}
	body, err := params.Body()
	if err != nil {
		return nil, usagef("%w", err)
	}
	req, err := stream.NewRequest(ctx, s.client.BaseURL, body)
	if err != nil {
		return nil, err
	}
	r := newRenderer(o)
	led := s.ledger()
	resp, err := s.client.HTTP.Do(req)
	if err == nil {
		err = stream.CheckResponse(resp)
	}
	if err != nil {
		return nil, led(ctx, resp, nil, s.report(ctx, r, nil, err))
	}
	defer resp.Body.Close()
	var sawUsage bool
	acc := stream.Accumulator{Tools: stream.ToolNamesFor(body), Discard: s.discard}
	msg, err := acc.Consume(resp.Body, func(d stream.Delta) error {
		sawUsage = sawUsage || d.Usage != nil
		if err := r.Delta(d); err != nil {
			return err
		}
		return ctx.Err() // Ctrl-C: stop at once with what arrived
	})
	if msg.Model == "" {
		msg.Model = o.Model
	}
	if !sawUsage {
		return msg, led(ctx, resp, msg, s.report(ctx, r, nil, err))
	}
	return msg, led(ctx, resp, msg, s.report(ctx, r, msg, err))
}

// report finishes the rendering of a turn (final text or message object,
// then the error if any) and writes the accounting line when usage arrived.
// It returns err as chat reports it.
func (s *chatSession) report(ctx context.Context, r renderer, msg *stream.Message, err error) error {
	err = chatError(ctx, err)
	if ferr := r.Finish(msg, err); ferr != nil && err == nil {
		err = ferr
	}
	if msg != nil {
		line := s.opts.Service.FormatUsage(msg.Usage, msg.Model)
		if k := s.client.KeyLabel(); k != "" {
			line += " · " + k
		}
		fmt.Fprintln(s.opts.IO.ErrOut, s.opts.IO.ErrScheme().Dim(line))
	}
	return err
}

// remember appends a completed exchange to the history. Tool calls are left
// out (interactive mode does not run tools, and a tool_use block must be
// answered by a tool_result); an answer left empty drops the exchange.
func (s *chatSession) remember(prompt string, msg *stream.Message) {
	var blocks []stream.Block
	for _, b := range msg.Content {
		if b.Type != "tool_use" && b.Type != "server_tool_use" {
			blocks = append(blocks, b)
		}
	}
	if len(blocks) == 0 {
		return
	}
	content, err := json.Marshal(blocks)
	if err != nil {
		return
	}
	turn, _ := json.Marshal(struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}{"assistant", content})
	s.history = append(s.history, stream.UserMessage(prompt), turn)
}
