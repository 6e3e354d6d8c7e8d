package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"

	"charm.land/glamour/v2"
	"charm.land/glamour/v2/styles"
	"golang.org/x/term"

	"github.com/piauth/piauth/pkg/stream"
)

// defaultMarkdownWidth is the word-wrap width when the terminal's is unknown.
const defaultMarkdownWidth = 80

// markdownRenderer is the text renderer with the answer's text rendered as
// markdown (glamour) on its way to the terminal: the text renderer writes
// into a markdownWriter, which prints each block once it is complete, and
// the rest when the turn finishes. Thinking and tool calls go to stderr as
// with the text renderer, after the markdown received so far is printed.
type markdownRenderer struct {
	*textRenderer
	md *markdownWriter
}

// newMarkdownRenderer puts markdown rendering in front of r's stdout; it
// returns r unchanged if glamour cannot be set up.
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
type markdownWriter struct {
	out     io.Writer
	md      *glamour.TermRenderer
	pending []byte // text of the blocks not yet rendered
	line    int    // where the current (unfinished) line starts in pending
	fence   []byte // the opening fence's marker while inside a fenced block
	blocks  int    // blocks written so far
}

// newMarkdownWriter renders to out with lines wrapped at width, in glamour's
// dark style with colour, else its plain notty style.
func newMarkdownWriter(out io.Writer, width int, color bool) (*markdownWriter, error) {
	style := styles.NoTTYStyleConfig
	if color {
		style = styles.DarkStyleConfig
	}
	md, err := glamour.NewTermRenderer(glamour.WithStyles(style), glamour.WithWordWrap(width), glamour.WithPreservedNewLines())
	if err != nil {
		return nil, fmt.Errorf("markdown: %w", err)
	}
	return &markdownWriter{out: out, md: md}, nil
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

// emit renders pending[:n] as one block (nothing for blank text), drops it
// from pending and returns 0, the start of the next line.
func (m *markdownWriter) emit(n int) (int, error) {
	block := m.pending[:n]
	var err error
	if !isBlank(block) {
		err = m.render(block)
	}
	m.pending = append(m.pending[:0], m.pending[n:]...)
	return 0, err
}

// Flush renders what was written and not rendered yet, as one block.
func (m *markdownWriter) Flush() error {
	m.fence = nil
	if _, err := m.emit(len(m.pending)); err != nil {
		return err
	}
	m.line = 0
	return nil
}

func (m *markdownWriter) render(block []byte) error {
	out, err := m.md.RenderBytes(block)
	if err != nil {
		out = block // glamour failed: the text as it came
	}
	out = tidyRendered(out)
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

// trailingPad is what glamour pads its lines with: spaces, each in its own
// colour sequence.
var trailingPad = regexp.MustCompile(`(?:\x1b\[[0-9;]*m|[ \t])+$`)

// tidyRendered trims glamour's padding off a rendered block: the spaces at
// the end of each line (with their colour codes; a reset ends a line left
// coloured) and the blank lines around the block. Each line ends with "\n".
func tidyRendered(out []byte) []byte {
	lines := bytes.Split(out, []byte("\n"))
	var b bytes.Buffer
	blank := 0
	for _, l := range lines {
		t := trailingPad.ReplaceAll(l, nil)
		if len(t) < len(l) && bytes.IndexByte(t, 0x1b) >= 0 {
			t = append(t, "\x1b[m"...)
		}
		if len(t) == 0 {
			blank++
			continue
		}
		if b.Len() > 0 {
			b.WriteString(string(bytes.Repeat([]byte("\n"), blank)))
		}
		blank = 0
		b.Write(t)
		b.WriteByte('\n')
	}
	return b.Bytes()
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
