package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/pkg/convo"
	"github.com/piauth/piauth/pkg/rotate"
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
	// Conversations stores every turn (Factory.Conversations; nil: off).
	Conversations *convoStore

	Args         []string // prompt words
	Model        string
	ModelSet     bool // -m was given (a continued conversation keeps its model otherwise)
	System       string
	SystemSet    bool // -s was given
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

	Quiet          bool     // -q: no accounting line
	AllowTruncated bool     // a one-shot answer cut at max_tokens exits 0
	Temperature    *float64 // --temperature (nil: the API's default)
	TopP           *float64 // --top-p
	Stop           []string // --stop, repeatable
	Attach         []string // -a FILE, repeatable
	Continue       bool     // -c: continue the last conversation
	CID            string   // --cid ID (a unique prefix will do)
	ToolResults    []string // --tool-result ID=JSON|@FILE
	ToolErrors     []string // --tool-error ID=TEXT|@FILE (is_error)
	List           bool     // --list
	Show           string   // --show ID
	Delete         string   // --delete ID

	Raw         bool   // --raw: the answer's markdown as it came, even on a terminal
	Width       int    // markdown word-wrap width (0: the terminal's)
	HistoryFile string // the interactive line history ("": in memory only)
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
raised above --thinking when only --thinking is given.

Every turn is stored (the state dir's conversations.db; PIAUTH_LOG=off turns
it off): -c continues the last conversation, --cid ID another (a unique
prefix of the id will do), on the key that answered it. --list, --show ID
and --delete ID manage them. A turn that ends in tool_use is answered with
-c --tool-result ID=JSON (or ID=@FILE; --tool-error for a failed tool), one
per tool call; the tools file is remembered. -a FILE attaches an image (png,
jpeg, gif, webp; 3.75 MB), a PDF (32 MB) or a text file.

An answer cut at max_tokens says so on stderr and exits 5 (0 with
--allow-truncated); refusal and pause_turn are said too.`,
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
			&cli.BoolFlag{Name: "continue", Aliases: []string{"c"}, Usage: "continue the last conversation"},
			&cli.StringFlag{Name: "cid", Usage: "continue the conversation `ID` (a unique prefix will do)"},
			repeatedFlag("attach", []string{"a"}, "attach `FILE`: an image, a PDF or a text file (repeatable)"),
			repeatedFlag("tool-result", nil, "answer a tool call: `ID=JSON` or ID=@FILE (repeatable; with -c or --cid)"),
			repeatedFlag("tool-error", nil, "answer a tool call as failed: `ID=TEXT` or ID=@FILE (repeatable)"),
			&cli.BoolFlag{Name: "list", Usage: "list the stored conversations (with --json: a JSON array)"},
			&cli.StringFlag{Name: "show", Usage: "print conversation `ID` (with --json: its stored messages)"},
			&cli.StringFlag{Name: "delete", Usage: "delete conversation `ID`"},
			&cli.Float64Flag{Name: "temperature", Usage: "sampling temperature `T` (0-1; 1 with --thinking)", DefaultText: "the API's, 1"},
			&cli.Float64Flag{Name: "top-p", Usage: "nucleus sampling `P` (0-1; 0.95-1 with --thinking)", DefaultText: "unset"},
			repeatedFlag("stop", nil, "stop sequence `TEXT` (repeatable)"),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no accounting line on stderr"},
			&cli.BoolFlag{Name: "allow-truncated", Usage: "exit 0 when the answer is cut at max_tokens"},
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
			opts.conversationFlags(c)
			opts.Conversations = f.Conversations(c.Context)
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
	defer opts.Conversations.Close()
	if err := opts.checkModes(); err != nil {
		return err
	}
	if opts.List || opts.Show != "" || opts.Delete != "" {
		return chatManage(ctx, opts)
	}
	s := &chatSession{opts: opts}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	prompt, interactive, err := opts.prompt()
	if errors.Is(err, errEmptyPrompt) && (s.results != nil || s.attachments != nil || s.paused) {
		prompt, err = "", nil // the turn is the tool results, the files, or a paused turn resumed
	}
	if err != nil {
		return err
	}
	client, err := opts.Messages(ctx, messagesOptions{Wait: opts.Wait, SwitchAt: opts.SwitchAt})
	if err != nil {
		return err
	}
	s.client, s.interactive = client, interactive
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
	return o.checkSampling()
}

// errEmptyPrompt: neither arguments nor stdin held a prompt.
var errEmptyPrompt = errors.New("empty prompt: give it as arguments or on stdin")

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
		return "", false, usagef("%w", errEmptyPrompt)
	}
	return strings.Join(parts, "\n\n"), false, nil
}

// chatSession holds a conversation: the client, the tools and the turns so
// far. opts.Model and opts.System are read at every turn (the REPL may
// change them); reset starts a new conversation.
type chatSession struct {
	opts    *chatOptions
	client  *messagesClient
	tools   json.RawMessage
	history []json.RawMessage // user and assistant turns, in order
	// discard: a single --stream turn in text mode prints the answer as it
	// arrives and needs nothing of it afterwards, so its text is not kept
	// (constant memory however long the answer; a textKeeper keeps a copy
	// of bounded size for the store).
	discard     bool
	interactive bool // the loop: waiting tool calls are declined, a cut answer does not end it

	conv        *convo.Conversation // the stored conversation (nil until its first turn is stored)
	pinKey      string              // fingerprint of the key that answered last: the next turn starts there
	pending     []string            // ids of the tool calls the last answer waits on
	paused      bool                // the last answer stopped with pause_turn
	results     []toolResult        // tool results for the next turn
	attachments []json.RawMessage   // attachment blocks for the next turn
}

// turn sends prompt (with the tool results and attachments given for it)
// after the history, on the key the conversation is pinned to, renders the
// answer and returns it. A completed answer is recorded: appended to the
// history and stored. A stop reason worth knowing (max_tokens, refusal,
// pause_turn) is said on stderr; a one-shot answer cut at max_tokens is a
// *truncatedError unless --allow-truncated.
func (s *chatSession) turn(ctx context.Context, prompt string) (*stream.Message, error) {
	o := s.opts
	user, err := s.nextUser(prompt)
	if err != nil {
		return nil, err
	}
	msgs := s.history
	if user != nil {
		msgs = slices.Concat(s.history, []json.RawMessage{user})
	}
	params := stream.Params{
		Model:         o.Model,
		System:        o.System,
		MaxTokens:     o.MaxTokens,
		Thinking:      o.Thinking,
		Messages:      msgs,
		Tools:         s.tools,
		Stream:        true, // always streamed; without --stream the text is printed at the end
		Temperature:   o.Temperature,
		TopP:          o.TopP,
		StopSequences: o.Stop,
	}
	body, err := params.Body()
	if err != nil {
		return nil, usagef("%w", err)
	}
	if limit := s.opts.Service.Limits().RequestBytes; len(body) > limit {
		return nil, usagef("the request is %s, over the API's %s limit (attachments and history count)", sizeMB(len(body)), sizeMB(limit))
	}
	pin := &rotate.Pin{Key: s.pinKey}
	req, err := stream.NewRequest(rotate.WithPin(ctx, pin), s.client.BaseURL, body)
	if err != nil {
		return nil, err
	}
	s.ensureConv(prompt)
	r := newRenderer(o)
	if jr, ok := r.(*jsonRenderer); ok {
		jr.conversation = s.convID()
	}
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
	acc := stream.Accumulator{Tools: s.toolNames(), Discard: s.discard}
	var keep *textKeeper
	if s.discard && o.Conversations.storing() {
		keep = &textKeeper{limit: maxStoredText}
	}
	msg, err := acc.Consume(resp.Body, func(d stream.Delta) error {
		sawUsage = sawUsage || d.Usage != nil
		keep.add(d)
		if err := r.Delta(d); err != nil {
			return err
		}
		return ctx.Err() // Ctrl-C: stop at once with what arrived
	})
	if msg.Model == "" {
		msg.Model = o.Model
	}
	shown := msg // the accounting line needs the usage
	if !sawUsage {
		shown = nil
	}
	if err = led(ctx, resp, msg, s.report(ctx, r, shown, err)); err != nil {
		return msg, err
	}
	fp, _, _ := pin.Used()
	if fp == "" { // the login answered: still say which credential
		fp = requestFingerprint(resp.Request)
	}
	if keep.fill(msg) {
		s.record(ctx, prompt, user, msg, fp)
	} else {
		o.Conversations.warn("an answer of more than %s is not stored", sizeMB(maxStoredText))
	}
	return msg, s.notice(msg)
}

// report finishes the rendering of a turn (final text or message object,
// then the error if any) and writes the accounting line when usage arrived.
// It returns err as chat reports it.
func (s *chatSession) report(ctx context.Context, r renderer, msg *stream.Message, err error) error {
	err = chatError(ctx, err)
	if ferr := r.Finish(msg, err); ferr != nil && err == nil {
		err = ferr
	}
	if msg != nil && !s.opts.Quiet {
		line := s.opts.Service.FormatUsage(msg.Usage, msg.Model)
		if k := s.client.KeyLabel(); k != "" {
			line += " · " + k
		}
		fmt.Fprintln(s.opts.IO.ErrOut, s.opts.IO.ErrScheme().Dim(line))
	}
	return err
}
