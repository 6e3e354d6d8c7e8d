// Package lineedit reads messages typed or pasted at a terminal: line
// editing, arrow keys and history come from golang.org/x/term's Terminal;
// this package adds what a chat needs on top of it — a bracketed paste of
// several lines is one message, a line ending in `\` or a `"""` block
// continues a message, Ctrl-C is told apart from Ctrl-D, and Ctrl-C can
// cancel work while no line is being read.
//
// The terminal is in raw mode from Open to Close (so Ctrl-C is a key, not a
// signal); output written meanwhile must end its lines with "\r\n" (see
// CRLF).
package lineedit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// ErrInterrupt is returned by ReadMessage when Ctrl-C was pressed; the
// message returned with it is the text that was discarded ("" on an empty
// line).
var ErrInterrupt = errors.New("interrupt")

// ErrCanceled is returned by ReadMessage after Cancel.
var ErrCanceled = errors.New("line editing canceled")

// ctrlCKey is what a Ctrl-C outside a paste is turned into before x/term
// sees it: x/term reports Ctrl-C as io.EOF, like Ctrl-D, so the key is
// replaced by one x/term hands to the completion callback (which notes the
// interrupt), followed by Enter to end the read.
const ctrlCKey = 0x1c

var (
	pasteStart = []byte("\x1b[200~")
	pasteEnd   = []byte("\x1b[201~")
)

// Editor reads messages from a terminal. It is not safe for concurrent use.
type Editor struct {
	fd    int
	saved *term.State
	out   io.Writer
	term  *term.Terminal
	keys  *keyboard
	hist  *History

	prompt, cont string
	interrupted  bool   // set by the callback when Ctrl-C arrived
	discarded    string // the line Ctrl-C discarded
	closeOnce    sync.Once
}

// Open puts the terminal in into raw mode and turns bracketed paste on; the
// prompt and the echo of what is typed go to out (the same terminal). hist
// may be nil (no history). Close restores the terminal.
func Open(in *os.File, out io.Writer, hist *History) (*Editor, error) {
	fd := int(in.Fd())
	saved, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if hist == nil {
		hist = NewHistory("", 0)
	}
	e := &Editor{fd: fd, saved: saved, out: out, keys: newKeyboard(in), hist: hist, prompt: "> ", cont: "… "}
	e.term = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{e.keys, out}, e.prompt)
	e.term.History = termHistory{hist}
	e.term.AutoCompleteCallback = e.onKey
	e.term.SetBracketedPasteMode(true)
	return e, nil
}

// Close turns bracketed paste off and restores the terminal's mode. It is
// safe to call more than once (deferred and on the normal path).
func (e *Editor) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.term.SetBracketedPasteMode(false)
		err = term.Restore(e.fd, e.saved)
	})
	return err
}

// Cancel makes a ReadMessage under way, and every later one, return
// ErrCanceled (e.g. when a signal ends the program). It is safe to call
// from any goroutine, more than once.
func (e *Editor) Cancel() { e.keys.once.Do(func() { close(e.keys.stop) }) }

// SetPrompt sets the prompt of a message's first line and of the lines that
// continue it.
func (e *Editor) SetPrompt(first, cont string) { e.prompt, e.cont = first, cont }

// SetSize tells the line editor the terminal's width and height.
func (e *Editor) SetSize(width, height int) { _ = e.term.SetSize(width, height) }

// History is the editor's history.
func (e *Editor) History() *History { return e.hist }

// onKey is x/term's completion callback, called for keys it does not
// handle itself: the Ctrl-C stand-in marks the line interrupted.
func (e *Editor) onKey(line string, pos int, key rune) (string, int, bool) {
	if key != ctrlCKey {
		return "", 0, false
	}
	e.interrupted, e.discarded = true, line
	return line + "^C", len(line) + 2, true
}

// ReadMessage reads one message. A message is a line; or the lines of a
// bracketed paste, sent when Enter is pressed after it (a line typed after
// the paste joins it); or lines ending in `\` (the backslash dropped) and
// the line after them; or the lines between a `"""` line and the next one.
// It returns io.EOF for Ctrl-D on an empty line and ErrInterrupt (with the
// discarded text) for Ctrl-C.
func (e *Editor) ReadMessage() (string, error) {
	var lines []string
	block, pasted := false, false
	e.term.SetPrompt(e.prompt)
	for {
		line, err := e.term.ReadLine()
		if e.interrupted {
			e.interrupted = false
			return strings.Join(append(lines, e.discarded), "\n"), ErrInterrupt
		}
		if errors.Is(err, term.ErrPasteIndicator) {
			lines, pasted = append(lines, line), true
			e.term.SetPrompt(e.cont)
			continue
		}
		if err != nil {
			return "", err
		}
		switch {
		case block && strings.TrimSpace(line) == `"""`:
			return strings.Join(lines, "\n"), nil
		case block:
			lines = append(lines, line)
			continue
		case len(lines) == 0 && strings.TrimSpace(line) == `"""`:
			block = true
			e.term.SetPrompt(e.cont)
			continue
		case strings.HasSuffix(line, `\`):
			lines = append(lines, strings.TrimSuffix(line, `\`))
			e.term.SetPrompt(e.cont)
			continue
		}
		if line != "" || !pasted { // Enter after a paste that ended its last line adds no empty line
			lines = append(lines, line)
		}
		return strings.Join(lines, "\n"), nil
	}
}

// WatchInterrupt calls cancel when Ctrl-C is pressed, until stop is
// called; keys typed after the last Ctrl-C are kept and read by the next
// ReadMessage (type-ahead).
// No message may be read between WatchInterrupt and stop.
func (e *Editor) WatchInterrupt(cancel func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case chunk, ok := <-e.keys.ch:
				if !ok {
					e.keys.eof = true
					return
				}
				if i := bytes.LastIndexByte(chunk, 0x03); i >= 0 && !e.keys.pasting {
					cancel() // and what was typed before it is dropped
					e.keys.pending, chunk = nil, chunk[i+1:]
				}
				e.keys.pending = append(e.keys.pending, e.keys.translate(chunk)...)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// keyboard owns the terminal's input: one goroutine reads it, and whoever
// needs keys (the line editor, or the interrupt watcher during a turn)
// takes them from ch.
type keyboard struct {
	ch      chan []byte
	stop    chan struct{} // closed by Editor.Cancel
	once    sync.Once
	pending []byte // translated keys not yet handed to the line editor
	pasting bool   // inside a bracketed paste (Ctrl-C there is text)
	eof     bool
}

func newKeyboard(in io.Reader) *keyboard {
	k := &keyboard{ch: make(chan []byte), stop: make(chan struct{})}
	go func() {
		defer close(k.ch)
		for {
			buf := make([]byte, 4096)
			n, err := in.Read(buf)
			if n > 0 {
				k.ch <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	return k
}

// Read hands keys to x/term's Terminal.
func (k *keyboard) Read(p []byte) (int, error) {
	for len(k.pending) == 0 {
		if k.eof {
			return 0, io.EOF
		}
		select {
		case <-k.stop:
			return 0, ErrCanceled
		case chunk, ok := <-k.ch:
			if !ok {
				k.eof = true
				continue
			}
			k.pending = k.translate(chunk)
		}
	}
	n := copy(p, k.pending)
	k.pending = k.pending[n:]
	return n, nil
}

// translate replaces each Ctrl-C outside a bracketed paste with the
// stand-in key and Enter, following the paste markers through chunk.
func (k *keyboard) translate(chunk []byte) []byte {
	if bytes.IndexByte(chunk, 0x03) < 0 && bytes.IndexByte(chunk, 0x1b) < 0 {
		return chunk
	}
	out := make([]byte, 0, len(chunk)+2)
	for i := 0; i < len(chunk); i++ {
		switch {
		case bytes.HasPrefix(chunk[i:], pasteStart):
			k.pasting = true
		case bytes.HasPrefix(chunk[i:], pasteEnd):
			k.pasting = false
		case chunk[i] == 0x03 && !k.pasting:
			out = append(out, ctrlCKey, '\r')
			continue
		}
		out = append(out, chunk[i])
	}
	return out
}

// CRLF returns a writer that turns each "\n" not preceded by "\r" into
// "\r\n", for output to a terminal in raw mode.
func CRLF(w io.Writer) io.Writer { return &crlf{w: w} }

type crlf struct {
	w    io.Writer
	cr   bool // the last byte written was '\r'
	buf  []byte
	lock sync.Mutex
}

func (c *crlf) Write(p []byte) (int, error) {
	c.lock.Lock()
	defer c.lock.Unlock()
	if bytes.IndexByte(p, '\n') < 0 {
		if len(p) > 0 {
			c.cr = p[len(p)-1] == '\r'
		}
		return c.w.Write(p)
	}
	c.buf = c.buf[:0]
	for _, b := range p {
		if b == '\n' && !c.cr {
			c.buf = append(c.buf, '\r')
		}
		c.buf = append(c.buf, b)
		c.cr = b == '\r'
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
