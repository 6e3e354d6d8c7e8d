package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/piauth/piauth/internal/lineedit"
	"github.com/piauth/piauth/internal/spinner"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// chatHistoryFile is the interactive line history in the state dir.
const chatHistoryFile = "chat_history"

// chatHistoryPath is where the REPL keeps its line history, "" (memory
// only) with PIAUTH_LOG=off or without a state dir.
func (f *Factory) chatHistoryPath() string {
	if f.logOff() {
		return ""
	}
	dir, err := keystore.ResolveStateDir(f.Getenv)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, chatHistoryFile)
}

// replCommands are the REPL's slash commands, for /help and suggestions.
var replCommands = []struct{ name, args, help string }{
	{"model", "[NAME]", "show the model, or switch to NAME (an id or alias)"},
	{"system", "[TEXT|-]", "show the system prompt, set it to TEXT, or clear it with -"},
	{"clear", "", "forget the conversation so far"},
	{"usage", "", "tokens and cost of this session so far"},
	{"help", "", "this list"},
	{"exit", "", "leave (also Ctrl-D, or Ctrl-C twice on an empty line)"},
}

// loop is the interactive conversation: the REPL when stdin is a terminal
// and stderr or stdout shows it (and not --json), else one prompt per line
// of stdin. first (from the arguments) is the first turn when not empty.
func (s *chatSession) loop(ctx context.Context, first string) error {
	ios := s.opts.IO
	if f, ok := ios.In.(*os.File); ok && ios.InTTY && (ios.ErrTTY || ios.OutTTY) && !s.opts.JSON && term.IsTerminal(int(f.Fd())) {
		return s.repl(ctx, f, first)
	}
	return s.lineLoop(ctx, first)
}

// replState is what the REPL keeps beside the session.
type replState struct {
	ed      *lineedit.Editor
	errOut  io.Writer // stderr in raw mode
	rawOut  *os.File  // the terminal stdout writes to, if any (its width)
	spin    spinGate
	usage   stream.Usage // summed over the session's turns
	costUSD float64
	priced  bool // every turn so far had a known price
	turns   int
	histErr bool // saving the history failed once (said once)
}

// repl runs the conversation on a terminal: line editing and history
// (lineedit), streamed answers behind a spinner, Ctrl-C cancelling the
// answer in flight, slash commands. The terminal is restored on every
// return, a panic's included.
func (s *chatSession) repl(ctx context.Context, in *os.File, first string) error {
	o := s.opts
	io0 := *o.IO
	hist, herr := lineedit.LoadHistory(o.HistoryFile, lineedit.DefaultHistorySize)
	if o.HistoryFile == "" {
		hist = lineedit.NewHistory("", 0)
	}
	// While the terminal is raw, every line written to it ends in "\r\n";
	// the prompt and the echo go to stderr, or stdout when only it is the
	// terminal.
	out, errOut := io0.Out, io0.ErrOut
	if io0.OutTTY {
		out = lineedit.CRLF(out)
	}
	if io0.ErrTTY {
		errOut = lineedit.CRLF(errOut)
	}
	echo := errOut
	if !io0.ErrTTY {
		echo = out
	}
	ed, err := lineedit.Open(in, echo, hist)
	if err != nil { // not a terminal after all: one prompt per line
		return s.lineLoop(ctx, first)
	}
	defer func() { _ = ed.Close() }()
	defer context.AfterFunc(ctx, ed.Cancel)() // SIGINT/SIGTERM from outside end a read too
	st := &replState{ed: ed, errOut: errOut, priced: true}
	st.rawOut, _ = io0.Out.(*os.File)
	// The spinner goes at the first byte of the answer (or of an error).
	o.IO.Out = st.spin.gate(out)
	o.IO.ErrOut = st.spin.gate(errOut)
	defer func() { o.IO.Out, o.IO.ErrOut = io0.Out, io0.ErrOut }()
	o.Stream, s.discard = true, false
	if herr != nil {
		fmt.Fprintf(errOut, "piauth: %s\n", herr)
	}
	s.banner(errOut)
	ed.SetPrompt(o.IO.ErrScheme().Bold("> "), o.IO.ErrScheme().Dim("… "))

	prompt, ctrlC := first, false
	for {
		if prompt == "" {
			if w, h, err := term.GetSize(int(in.Fd())); err == nil {
				ed.SetSize(w, h)
			}
			msg, err := ed.ReadMessage()
			switch {
			case ctx.Err() != nil:
				return chatError(ctx, ctx.Err())
			case errors.Is(err, lineedit.ErrInterrupt):
				if msg == "" && ctrlC {
					return nil
				}
				ctrlC = msg == ""
				if ctrlC {
					fmt.Fprintln(errOut, o.IO.ErrScheme().Dim("(Ctrl-C again or Ctrl-D to leave)"))
				}
				continue
			case errors.Is(err, io.EOF):
				fmt.Fprintln(errOut) // end on a fresh line
				return nil
			case err != nil:
				return fmt.Errorf("read the prompt: %w", err)
			}
			ctrlC = false
			if prompt = strings.TrimSpace(msg); prompt == "" {
				continue
			}
			st.remember(prompt)
		}
		if ctx.Err() != nil {
			return chatError(ctx, ctx.Err())
		}
		if strings.HasPrefix(prompt, "/") && !strings.Contains(prompt, "\n") {
			if s.command(st, prompt) {
				return nil
			}
			prompt = ""
			continue
		}
		if err := s.replTurn(ctx, st, prompt); err != nil {
			return err
		}
		prompt = ""
	}
}

// remember adds a message to the line history, saying once if the file
// cannot be written.
func (st *replState) remember(msg string) {
	if err := st.ed.History().Add(msg); err != nil && !st.histErr {
		st.histErr = true
		fmt.Fprintf(st.errOut, "piauth: %s\n", err)
	}
}

// replTurn runs one turn with Ctrl-C cancelling it: an interrupted answer
// stays on screen marked so and is not added to the conversation. A failed
// turn is reported and forgotten; errors that end chat (no login, the
// whole pool rate-limited, the session's context ending) are returned.
func (s *chatSession) replTurn(ctx context.Context, st *replState, prompt string) error {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := st.ed.WatchInterrupt(cancel)
	if s.opts.IO.ErrTTY {
		st.spin.start(st.errOut)
	}
	if st.rawOut != nil {
		s.opts.Width = terminalWidth(st.rawOut)
	}
	msg, err := s.turn(tctx, prompt)
	st.spin.stop()
	stop()
	if msg != nil {
		st.count(s.opts.Service, msg)
	}
	switch {
	case ctx.Err() != nil:
		return chatError(ctx, ctx.Err())
	case tctx.Err() != nil:
		fmt.Fprintln(st.errOut, s.opts.IO.ErrScheme().Yellow("[interrupted]"))
		return nil
	case err != nil && exitCode(err) != exitError:
		return err
	case err != nil:
		fmt.Fprintf(st.errOut, "piauth: %s\n", err)
		return nil
	}
	// turn recorded the exchange (history and store)
	return nil
}

// count adds a turn's usage and cost to the session's.
func (st *replState) count(svc *stream.Service, msg *stream.Message) {
	u := msg.Usage
	st.turns++
	st.usage.InputTokens += u.InputTokens
	st.usage.OutputTokens += u.OutputTokens
	st.usage.CacheReadInputTokens += u.CacheReadInputTokens
	st.usage.CacheCreationInputTokens += u.CacheCreationInputTokens
	st.usage.CacheCreation5m += u.CacheCreation5m
	st.usage.CacheCreation1h += u.CacheCreation1h
	if usd, ok := svc.Cost(msg.Model, u); ok {
		st.costUSD += usd
	} else {
		st.priced = false
	}
}

// banner says what the REPL talks to and how to leave.
func (s *chatSession) banner(w io.Writer) {
	key := s.client.KeyLabel()
	if key == "" {
		key = "🔑 login"
	}
	sc := s.opts.IO.ErrScheme()
	fmt.Fprintf(w, "%s %s · %s\n", sc.Bold("piauth chat"), s.opts.Model, key)
	fmt.Fprintln(w, sc.Dim("Ctrl-C stops an answer · Ctrl-D or /exit leaves · /help for more"))
}

// command runs a slash command; it returns true to leave.
func (s *chatSession) command(st *replState, line string) bool {
	o, w := s.opts, st.errOut
	name, arg, _ := strings.Cut(strings.TrimPrefix(line, "/"), " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "exit", "quit":
		return true
	case "help":
		for _, c := range replCommands {
			fmt.Fprintf(w, "  /%-16s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
		}
		fmt.Fprintln(w, `A pasted block is one message (sent at the Enter after it); so are lines`)
		fmt.Fprintln(w, `ending in \ with the line after them, and the lines between two """ lines.`)
	case "model":
		if arg != "" {
			prev := o.Model
			o.Model = arg
			if err := o.resolveModel(); err != nil {
				o.Model = prev
				fmt.Fprintf(w, "piauth: %s\n", err)
				break
			}
		}
		fmt.Fprintf(w, "model %s\n", o.Model)
	case "system":
		switch arg {
		case "":
		case "-":
			o.System = ""
		default:
			o.System = arg
		}
		if o.System == "" {
			fmt.Fprintln(w, "no system prompt")
		} else {
			fmt.Fprintf(w, "system: %s\n", o.System)
		}
	case "clear":
		s.reset()
		fmt.Fprintln(w, "conversation cleared")
	case "usage":
		line := o.Service.FormatUsage(st.usage, "")
		if st.priced {
			line += fmt.Sprintf(" · $%.4f", st.costUSD)
		}
		fmt.Fprintf(w, "%s · %d turns\n", line, st.turns)
	default:
		msg := fmt.Sprintf("unknown command /%s", name)
		if sug := suggestSlash(name); sug != "" {
			msg += fmt.Sprintf("; did you mean /%s?", sug)
		}
		fmt.Fprintln(w, msg+" (/help lists them)")
	}
	return false
}

// suggestSlash is the slash command within two edits of name, or that name
// starts, or "".
func suggestSlash(name string) string {
	best, bestDist := "", 3
	for _, c := range replCommands {
		d := editDistance(strings.ToLower(name), c.name)
		if name != "" && strings.HasPrefix(c.name, strings.ToLower(name)) {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c.name, d
		}
	}
	return best
}

// spinGate shows a spinner until the first byte written through one of its
// gated writers.
type spinGate struct {
	mu sync.Mutex
	sp *spinner.Spinner
}

func (g *spinGate) start(w io.Writer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sp = spinner.Start(w, "")
}

func (g *spinGate) stop() {
	g.mu.Lock()
	sp := g.sp
	g.sp = nil
	g.mu.Unlock()
	if sp != nil {
		sp.Stop()
	}
}

// gate returns w with the spinner stopped before each write.
func (g *spinGate) gate(w io.Writer) io.Writer { return gatedWriter{g: g, w: w} }

type gatedWriter struct {
	g *spinGate
	w io.Writer
}

func (gw gatedWriter) Write(p []byte) (int, error) {
	gw.g.stop()
	return gw.w.Write(p)
}

// lineLoop is the conversation without a terminal: one prompt per line of
// stdin, first (from the arguments) before them; /exit or EOF ends it. A
// failed turn is reported and forgotten; Ctrl-C, a missing login or an
// exhausted pool end the loop with their error.
func (s *chatSession) lineLoop(ctx context.Context, first string) error {
	done := make(chan struct{})
	defer close(done)
	lines := readLines(s.opts.IO.In, done)
	prompt := first
	for {
		for prompt == "" {
			if s.opts.IO.InTTY {
				fmt.Fprint(s.opts.IO.ErrOut, s.opts.IO.ErrScheme().Bold("> "))
			}
			select {
			case <-ctx.Done():
				return chatError(ctx, ctx.Err())
			case l, ok := <-lines:
				if !ok {
					return nil
				}
				prompt = strings.TrimSpace(l)
			}
			if prompt == "/exit" {
				return nil
			}
		}
		_, err := s.turn(ctx, prompt)
		if err != nil {
			if ctx.Err() != nil || exitCode(err) != exitError {
				return err
			}
			fmt.Fprintf(s.opts.IO.ErrOut, "piauth: %s\n", err)
			prompt = ""
			continue
		}
		prompt = "" // turn recorded the exchange (history and store)
	}
}

// readLines reads r line by line in the background so the loop can also
// wait for Ctrl-C. The channel is closed at EOF or on a read error; closing
// done stops the reader after its current read.
func readLines(r io.Reader, done <-chan struct{}) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				select {
				case ch <- line:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}
