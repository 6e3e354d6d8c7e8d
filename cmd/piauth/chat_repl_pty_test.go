package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
)

// replScenario answers with two paragraphs; replEnd is the end of the second.
const (
	replFirst    = "Streaming first."
	replEnd      = "END-MARK"
	replScenario = `{"reply": {"text": "Streaming first.\n\nThe second paragraph takes its time to arrive, word by word, until it ends with END-MARK",
	  "deltas": 12, "event_delay_ms": 1,
	  "usage": {"input_tokens": 1234, "output_tokens": 567, "cache_read_input_tokens": 2048}}}`
	// replAccounting is one turn's accounting line (see wantAccounting).
	replAccounting = "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0083"
)

// replHarness is the emulator (its streams held mid-way until gate opens,
// when hold is set) and a state dir for `piauth chat` on a pty.
type replHarness struct {
	*chatHarness
	gate   *testenv.StreamGate
	state  string
	stdout string // a file piauth's stdout is redirected to ("": the pty)
}

func newREPLHarness(t *testing.T, hold bool) *replHarness {
	t.Helper()
	h := &replHarness{chatHarness: newChatHarness(t, ""), gate: testenv.NewStreamGate(), state: t.TempDir()}
	sc, err := emulator.ParseScenario([]byte(replScenario))
	require.NoError(t, err)
	opts := emulator.Options{Scenario: sc}
	if hold {
		opts.Sleep = holdAfter(h.gate, 5)
	} else {
		h.gate.Open()
	}
	h.emu = emulator.New(opts)
	h.login(chatToken("repl"))
	return h
}

// holdAfter is an emulator Sleep that lets the first n events of each
// request pass, then holds the rest on g (past its own first pass): the
// stream stops after the first paragraph of replScenario.
func holdAfter(g *testenv.StreamGate, n int) func(ctx context.Context, d time.Duration) error {
	var mu sync.Mutex
	seen := map[<-chan struct{}]int{}
	return func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		seen[ctx.Done()]++
		c := seen[ctx.Done()]
		mu.Unlock()
		if c <= n {
			return nil
		}
		return g.Sleep(ctx, d)
	}
}

// start runs `piauth chat ARGS` on a pty through sh, which prints the
// terminal's settings (stty -a) after piauth exits: the test sees whether
// the terminal was restored.
func (h *replHarness) start(t *testing.T, env []string, args ...string) *ptyProc {
	t.Helper()
	script := `"$0" "$@"; echo "EXIT=$?"; stty -a; echo STTY-END`
	if h.stdout != "" {
		script = `"$0" "$@" >"$PIAUTH_TEST_STDOUT"; echo "EXIT=$?"; stty -a; echo STTY-END`
		env = append(env, "PIAUTH_TEST_STDOUT="+h.stdout)
	}
	argv := append([]string{"-c", script, piauthBinary(t), "--dir", h.dir, "--keyring", "off", "chat"}, args...)
	cmd := exec.Command("sh", argv...)
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "PIAUTH_BASE_URL="+h.srv.URL,
		"PIAUTH_TOKEN_URL="+h.srv.URL+"/v1/oauth/token", "PIAUTH_STATE_DIR="+h.state, "PIAUTH_LEDGER=off"), env...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	require.NoError(t, err)
	return newPTYProc(t, cmd, tty)
}

// since is what the terminal showed after the first len(mark) bytes.
func (p *ptyProc) since(n int) string { return p.output()[n:] }

// waitAfter waits until the terminal shows s after offset n and returns the
// offset just past it.
func (p *ptyProc) waitAfter(n int, s string) int {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if i := strings.Index(p.since(n), s); i >= 0 {
			return n + i + len(s)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %q; terminal shows %q", s, p.since(n))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leave waits for piauth to exit and checks it exited 0, on a fresh line,
// with the terminal back in its normal (cooked, echoing) mode.
func (p *ptyProc) leave(from int) string {
	p.t.Helper()
	code, out := p.wait()
	require.Equal(p.t, 0, code, out)
	rest := strings.ReplaceAll(out[from:], "\x1b[?2004l", "") // bracketed paste off
	require.Contains(p.t, rest, "EXIT=0", out)
	i := strings.Index(rest, "EXIT=0")
	assert.True(p.t, strings.HasSuffix(strings.TrimRight(rest[:i], " "), "\n"), "ends on a fresh line: %q", rest[:i])
	stty := rest[i:]
	assert.Regexp(p.t, `(^|\s)icanon(\s|$)`, stty, "canonical mode restored")
	assert.Regexp(p.t, `(^|\s)echo(\s|$)`, stty, "echo restored")
	assert.Regexp(p.t, `(^|\s)isig(\s|$)`, stty, "signals restored")
	assert.Regexp(p.t, `(^|\s)opost(\s|$)`, stty, "output processing restored")
	return out
}

// userTexts are the user messages of a recorded request, in order.
func userTexts(t *testing.T, req chatRequest) []string {
	t.Helper()
	var out []string
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		var s string
		require.NoError(t, json.Unmarshal(m.Content, &s))
		out = append(out, s)
	}
	return out
}

// The REPL streams: the first paragraph is on screen while the rest of the
// answer is held by the emulator; a banner names the model and the key.
func TestREPLStreamsBeforeTheAnswerEnds(t *testing.T) {
	h := newREPLHarness(t, true)
	p := h.start(t, nil)
	n := p.waitAfter(0, "piauth chat claude-sonnet-5-5 · 🔑")
	n = p.waitAfter(n, "Ctrl-D or /exit leaves")
	n = p.waitAfter(n, "> ")
	p.write("hi there\r")
	n = p.waitAfter(n, replFirst)
	assert.NotContains(t, p.since(n), replEnd, "the end is still held by the emulator")
	h.gate.Open()
	n = p.waitAfter(n, replEnd)
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("\x04") // Ctrl-D
	p.leave(n)
	require.Len(t, h.requests(), 1)
}

// A bracketed paste of three lines is one message, sent by the Enter after
// it; a line ending in \ continues the message, and so does a """ block.
func TestREPLPasteIsOneMessage(t *testing.T) {
	h := newREPLHarness(t, false)
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	p.write("\x1b[200~line one\rline two\rline three\x1b[201~")
	p.write("\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("typed one \\\rtyped two\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("\"\"\"\rblock one\r\rblock three\r\"\"\"\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("/exit\r")
	p.leave(n)

	reqs := h.requests()
	require.Len(t, reqs, 3, "one request per message")
	assert.Equal(t, []string{"line one\nline two\nline three"}, userTexts(t, reqs[0]))
	assert.Equal(t, "typed one \ntyped two", userTexts(t, reqs[1])[1])
	assert.Equal(t, "block one\n\nblock three", userTexts(t, reqs[2])[2])
}

// Ctrl-C stops the answer in flight: what arrived stays on screen marked
// interrupted, the turn is not part of the conversation, and the session
// goes on; Ctrl-C twice on an empty line leaves.
func TestREPLCtrlCCancelsOneTurn(t *testing.T) {
	h := newREPLHarness(t, true)
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	p.write("first\r")
	n = p.waitAfter(n, replFirst)
	p.write("\x03")
	n = p.waitAfter(n, "[interrupted]")
	n = p.waitAfter(n, "> ")
	assert.NotContains(t, p.output(), replEnd)
	h.gate.Open()
	p.write("second\r")
	n = p.waitAfter(n, replEnd)
	n = p.waitAfter(n, "> ")
	p.write("typed, then dropped\x03") // Ctrl-C on a line discards it
	n = p.waitAfter(n, "^C")
	n = p.waitAfter(n, "> ")
	p.write("\x03")
	n = p.waitAfter(n, "Ctrl-C again or Ctrl-D to leave")
	p.write("\x03")
	p.leave(n)

	reqs := h.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, []string{"second"}, userTexts(t, reqs[1]), "the interrupted turn is not in the history")
}

// The up arrow recalls the previous message, in the same session and in the
// next one (the history file, 0600, in the state dir).
func TestREPLHistoryRecall(t *testing.T) {
	h := newREPLHarness(t, false)
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	p.write("remember this question\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("\x1b[A\r") // up, Enter: the same question again
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("/exit\r")
	p.leave(n)

	path := filepath.Join(h.state, chatHistoryFile)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	p = h.start(t, nil)
	n = p.waitAfter(0, "> ")
	p.write("\x1b[A\x1b[A") // /exit, then the question
	n = p.waitAfter(n, "remember this question")
	p.write("\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("\x04")
	p.leave(n)

	reqs := h.requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, []string{"remember this question", "remember this question"}, userTexts(t, reqs[1]))
	assert.Equal(t, []string{"remember this question"}, userTexts(t, reqs[2]), "recalled in a new session")

	// PIAUTH_LOG=off: no history file is written.
	h.state = t.TempDir()
	p = h.start(t, []string{"PIAUTH_LOG=off"})
	n = p.waitAfter(0, "> ")
	p.write("not kept\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("\x04")
	p.leave(n)
	assert.NoFileExists(t, filepath.Join(h.state, chatHistoryFile))
}

// /model, /system, /clear, /usage and an unknown command.
func TestREPLSlashCommands(t *testing.T) {
	h := newREPLHarness(t, false)
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	p.write("/model haiku\r")
	n = p.waitAfter(n, "model claude-haiku-5-5")
	p.write("/model claude-sonnet-4-5\r")
	n = p.waitAfter(n, "use claude-sonnet-5-5 (alias sonnet)")
	p.write("/system Be terse.\r")
	n = p.waitAfter(n, "system: Be terse.")
	p.write("one\r")
	n = p.waitAfter(n, replEnd)
	n = p.waitAfter(n, "> ")
	p.write("/usage\r")
	// claude-haiku-5-5 at 0.1 / 0.5 / 0.01 USD per million tokens:
	// 1,234×0.1e-6 + 567×0.5e-6 + 2,048×0.01e-6 = 0.0004323.
	n = p.waitAfter(n, "in 1,234 · out 567 · cache read 2,048 · cache write 0 · $0.0004 · 1 turns")
	p.write("two\r")
	n = p.waitAfter(n, replEnd)
	n = p.waitAfter(n, "> ")
	p.write("/clear\r")
	n = p.waitAfter(n, "conversation cleared")
	p.write("three\r")
	n = p.waitAfter(n, replEnd)
	n = p.waitAfter(n, "> ")
	p.write("/modle\r")
	n = p.waitAfter(n, "unknown command /modle; did you mean /model?")
	p.write("/help\r")
	n = p.waitAfter(n, "/usage")
	p.write("/exit\r")
	p.leave(n)

	reqs := h.requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		assert.Equal(t, "claude-haiku-5-5", r.Model)
		require.NotEmpty(t, r.System)
		assert.Equal(t, "Be terse.", r.System[len(r.System)-1].Text)
	}
	assert.Equal(t, []string{"one", "two"}, userTexts(t, reqs[1]))
	assert.Equal(t, []string{"three"}, userTexts(t, reqs[2]), "/clear forgot the conversation")
}

// With stdout piped, the REPL still runs on the terminal (prompt and echo on
// stderr), and the answers reach the pipe as they came: no markdown, no
// carriage returns.
func TestREPLStdoutPiped(t *testing.T) {
	h := newREPLHarness(t, false)
	h.stdout = filepath.Join(t.TempDir(), "answers.txt")
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	p.write("hi\r")
	n = p.waitAfter(n, replAccounting)
	n = p.waitAfter(n, "> ")
	p.write("/exit\r")
	p.leave(n)
	got, err := os.ReadFile(h.stdout)
	require.NoError(t, err)
	assert.Equal(t, "Streaming first.\n\nThe second paragraph takes its time to arrive, word by word, until it ends with END-MARK\n", string(got))
}

// A signal from outside (SIGTERM) at the prompt ends the REPL at once, exit
// 130, the terminal restored.
func TestREPLSignalAtThePrompt(t *testing.T) {
	h := newREPLHarness(t, false)
	p := h.start(t, nil)
	n := p.waitAfter(0, "> ")
	kids, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "task", strconv.Itoa(p.cmd.Process.Pid), "children"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.Fields(string(kids))[0])
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
	code, out := p.wait()
	require.Equal(t, 0, code, out) // sh's own exit
	rest := out[n:]
	require.Contains(t, rest, "EXIT=130", out)
	assert.Regexp(t, `(^|\s)icanon(\s|$)`, rest, "canonical mode restored")
	assert.Regexp(t, `(^|\s)echo(\s|$)`, rest, "echo restored")
}
