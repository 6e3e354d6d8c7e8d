package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/piauth/piauth/pkg/stream"
)

// defaultMarkdownWidth is the word-wrap width when the terminal's is unknown.
const defaultMarkdownWidth = 80

// markdownRenderer is the text renderer with the answer's text rendered as
// markdown (mdStyle) on its way to the terminal: the text renderer writes
// into a markdownWriter, which prints each block once it is complete, and
// the rest when the turn finishes. Thinking and tool calls go to stderr as
// with the text renderer, after the markdown received so far is printed.
type markdownRenderer struct {
	*textRenderer
	md *markdownWriter
}

// newMarkdownRenderer puts markdown rendering in front of r's stdout; it
// returns r unchanged if it cannot be set up.
func newMarkdownRenderer(o *chatOptions, r *textRenderer) renderer {
	width := o.Width
	if width <= 0 {
		width = terminalWidth(o.IO.Out)
	}
	md, err := newMarkdownWriter(r.out, width, o.IO.ColorOut())
	if err != nil {
		return r
	}
	r.out = md
	r.errOut = flushFirst{md: md, w: r.errOut}
	return &markdownRenderer{textRenderer: r, md: md}
}

func (r *markdownRenderer) Finish(msg *stream.Message, err error) error {
	ferr := r.textRenderer.Finish(msg, err)
	if cerr := r.md.Flush(); ferr == nil {
		ferr = cerr
	}
	return ferr
}

// terminalWidth is the width of the terminal w writes to, or the default.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if width, _, err := term.GetSize(int(f.Fd())); err == nil && width > 0 {
			return width
		}
	}
	return defaultMarkdownWidth
}

// markdownWriter renders markdown written to it, block by block: a
// paragraph or list when a blank line ends it, an ATX heading at its line's
// end, a fenced code block at its closing fence (a fence is never split).
// Flush renders what is left.
//
// Blocks are rendered by a goroutine of their own, in order, so that
// rendering overlaps the stream; Flush waits for it.
type markdownWriter struct {
	out     io.Writer
	style   mdStyle
	pending []byte // text of the blocks not yet handed to the renderer
	line    int    // where the current (unfinished) line starts in pending
	fence   []byte // the opening fence's marker while inside a fenced block

	mu      sync.Mutex
	wake    *sync.Cond // signalled when queue grows or is drained
	queue   [][]byte   // complete blocks waiting to be rendered
	backlog int        // bytes in queue
	err     error      // the renderer's first write error
	blocks  int        // blocks written so far (renderer only)
	active  bool       // the renderer goroutine runs
}

// newMarkdownWriter renders to out with lines wrapped at width, coloured
// or not.
func newMarkdownWriter(out io.Writer, width int, color bool) (*markdownWriter, error) {
	return &markdownWriter{out: out, style: newMDStyle(width, color)}, nil
}

func (m *markdownWriter) Write(p []byte) (int, error) {
	scan := len(m.pending)
	m.pending = append(m.pending, p...)
	for {
		i := bytes.IndexByte(m.pending[scan:], '\n')
		if i < 0 {
			return len(p), nil
		}
		end := scan + i
		next, err := m.endLine(m.line, end)
		if err != nil {
			return 0, err
		}
		m.line, scan = next, next
	}
}

// endLine looks at the line pending[start:end] that just ended and renders
// the blocks it completes. It returns where the next line starts.
func (m *markdownWriter) endLine(start, end int) (int, error) {
	line := m.pending[start:end]
	if m.fence != nil {
		if closesFence(line, m.fence) {
			m.fence = nil
			return m.emit(end + 1)
		}
		return end + 1, nil
	}
	if marker := openingFence(line); marker != nil {
		m.fence = marker
		if isBlank(m.pending[:start]) {
			return end + 1, nil
		}
		if _, err := m.emit(start); err != nil { // the paragraph the fence interrupts
			return 0, err
		}
		return end + 1 - start, nil
	}
	if isBlank(line) {
		return m.emit(end + 1)
	}
	if isHeading(line) {
		if _, err := m.emit(start); err != nil {
			return 0, err
		}
		return m.emit(end + 1 - start)
	}
	return end + 1, nil
}

// emit queues pending[:n] as one block for the renderer (nothing for blank
// text), drops it from pending and returns 0, the start of the next line.
func (m *markdownWriter) emit(n int) (int, error) {
	block := m.pending[:n]
	m.mu.Lock()
	err := m.err
	if !isBlank(block) && err == nil {
		m.queue = append(m.queue, bytes.Clone(block))
		if !m.active {
			m.active = true
			if m.wake == nil {
				m.wake = sync.NewCond(&m.mu)
			}
			go m.renderLoop()
		}
		m.wake.Broadcast()
	}
	m.mu.Unlock()
	m.pending = append(m.pending[:0], m.pending[n:]...)
	return 0, err
}

// renderLoop renders the queued blocks in order until the queue is empty.
func (m *markdownWriter) renderLoop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.queue) > 0 {
		block := m.queue[0]
		m.queue = m.queue[1:]
		m.mu.Unlock()
		err := m.render(block)
		m.mu.Lock()
		if err != nil && m.err == nil {
			m.err = err
		}
	}
	m.active = false
	m.wake.Broadcast()
}

// Flush renders what was written and not rendered yet (the last part as one
// block) and returns once all of it is written.
func (m *markdownWriter) Flush() error {
	m.fence = nil
	_, _ = m.emit(len(m.pending))
	m.line = 0
	return m.drain()
}

// drain waits until the renderer has written every queued block.
func (m *markdownWriter) drain() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.active {
		m.wake.Wait()
	}
	return m.err
}

// render writes one block (renderer goroutine only).
func (m *markdownWriter) render(block []byte) error {
	out := m.style.render(block)
	if len(out) == 0 {
		return nil
	}
	if m.blocks > 0 {
		out = append([]byte{'\n'}, out...)
	}
	m.blocks++
	if _, err := m.out.Write(out); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	return nil
}

// isBlank reports whether p holds only spaces, tabs and line ends.
func isBlank(p []byte) bool { return len(bytes.TrimSpace(p)) == 0 }

// indent returns line without up to three leading spaces, or nil when it is
// indented more (an indented code line).
func indent(line []byte) []byte {
	t := bytes.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return nil
	}
	return t
}

// openingFence returns the fence marker (``` or ~~~, or longer) that line
// opens, or nil.
func openingFence(line []byte) []byte {
	t := indent(line)
	if len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return nil
	}
	n := 0
	for n < len(t) && t[n] == t[0] {
		n++
	}
	if n < 3 || (t[0] == '`' && bytes.IndexByte(t[n:], '`') >= 0) {
		return nil
	}
	return bytes.Clone(t[:n])
}

// closesFence reports whether line closes a block opened with marker.
func closesFence(line, marker []byte) bool {
	t := indent(line)
	n := 0
	for n < len(t) && t[n] == marker[0] {
		n++
	}
	return n >= len(marker) && isBlank(t[n:])
}

// isHeading reports whether line is an ATX heading (# to ######).
func isHeading(line []byte) bool {
	t := indent(line)
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	return n >= 1 && n <= 6 && (n == len(t) || t[n] == ' ' || t[n] == '\t')
}

// flushFirst is stderr while markdown is rendered: the markdown received so
// far is printed before anything is written to stderr, so the two streams
// keep their order on the terminal.
type flushFirst struct {
	md *markdownWriter
	w  io.Writer
}

func (f flushFirst) Write(p []byte) (int, error) {
	if err := f.md.Flush(); err != nil {
		return 0, err
	}
	return f.w.Write(p)
}
