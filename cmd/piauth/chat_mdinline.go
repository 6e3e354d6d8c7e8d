package main

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/util"
)

// mdWord is a word of an mdInline: where it is in the buffer (styled) and
// its width on the terminal.
type mdWord struct{ start, end, w int }

// mdInline collects a block's inline text as lines of words, each word
// styled piece by piece, so that a word can be wrapped anywhere without an
// escape sequence spanning the break. The words share one buffer.
type mdInline struct {
	color   bool
	buf     []byte // the words, styled, one after another
	lines   [][]mdWord
	start   int    // where the word being built starts in buf
	curW    int    // its width
	open    bool   // a piece of it was added
	plain   []byte // while a link's text is added (capture), that text unstyled
	capture bool
}

// newMDInline starts an inline text, coloured or not.
func newMDInline(color bool) *mdInline {
	return &mdInline{color: color, lines: [][]mdWord{nil}}
}

// text adds s in sgr, a space or tab ending a word, a newline a line.
func (t *mdInline) text(sgr, s string) {
	for s != "" {
		i := strings.IndexAny(s, " \t\n")
		if i < 0 {
			t.piece(sgr, s)
			return
		}
		t.piece(sgr, s[:i])
		if s[i] == '\n' {
			t.breakLine()
		} else {
			t.endWord()
		}
		s = s[i+1:]
	}
}

// piece adds s, a part of a word, in sgr.
func (t *mdInline) piece(sgr, s string) {
	if s == "" {
		return
	}
	if t.color && sgr != "" {
		t.buf = append(append(append(t.buf, sgr...), s...), sgrReset...)
	} else {
		t.buf = append(t.buf, s...)
	}
	t.curW += utf8.RuneCountInString(s)
	t.open = true
	if t.capture {
		t.plain = append(t.plain, s...)
	}
}

// span adds a code span's text: in sgr with colour, between marks without.
func (t *mdInline) span(sgr, mark, s string) {
	if t.color {
		t.text(sgr, s)
		return
	}
	t.piece("", mark)
	t.text("", s)
	t.piece("", mark)
}

// endWord ends the word being built, if any.
func (t *mdInline) endWord() {
	if t.open {
		last := len(t.lines) - 1
		t.lines[last] = append(t.lines[last], mdWord{start: t.start, end: len(t.buf), w: t.curW})
		t.curW, t.open = 0, false
	}
	t.start = len(t.buf)
	if t.capture {
		t.plain = append(t.plain, ' ')
	}
}

// breakLine ends the current line.
func (t *mdInline) breakLine() {
	t.endWord()
	t.lines = append(t.lines, nil)
}

// done ends the text and returns its lines, without trailing empty ones.
func (t *mdInline) done() [][]mdWord {
	t.endWord()
	lines := t.lines
	for len(lines) > 1 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// joined returns all the words as one, a space between two, and its width.
func (t *mdInline) joined() (string, int) {
	var b []byte
	width := 0
	for _, l := range t.done() {
		for _, w := range l {
			if len(b) > 0 {
				b = append(b, ' ')
				width++
			}
			b = append(b, t.buf[w.start:w.end]...)
			width += w.w
		}
	}
	return string(b), width
}

// wrap writes lines word-wrapped at the style's width: first before the
// first line, rest before the others. Widths count runes, not escape
// sequences.
func (r *mdRender) wrap(t *mdInline, first, rest string) {
	limit := max(r.width-1, 20)
	for i, line := range t.done() {
		p := rest
		if i == 0 {
			p = first
		}
		if len(line) == 0 {
			p = strings.TrimRight(p, " ")
		}
		r.b.WriteString(p)
		col := visibleLen(p)
		for j, w := range line {
			if j > 0 && col+1+w.w > limit {
				r.b.WriteString("\n" + rest)
				col = visibleLen(rest)
			} else if j > 0 {
				r.b.WriteByte(' ')
				col++
			}
			r.b.Write(t.buf[w.start:w.end])
			col += w.w
		}
		r.b.WriteByte('\n')
	}
}

// textValue is a text node's text with backslash escapes and character
// references resolved (as goldmark's HTML renderer writes it).
func textValue(n *ast.Text, src []byte) string {
	v := n.Segment.Value(src)
	if n.IsRaw() {
		return string(v)
	}
	return string(util.ResolveEntityNames(util.ResolveNumericReferences(util.UnescapePunctuations(v))))
}

// codeSpanText is a code span's text, its line ends made spaces.
func codeSpanText(n *ast.CodeSpan, src []byte) string {
	var b strings.Builder
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if s, ok := c.(*ast.Text); ok {
			v := s.Segment.Value(src)
			if bytes.HasSuffix(v, []byte("\n")) {
				b.Write(v[:len(v)-1])
				b.WriteByte(' ')
				continue
			}
			b.Write(v)
		}
	}
	return b.String()
}

// visibleLen is the number of runes of s outside escape sequences.
func visibleLen(s string) int {
	if strings.IndexByte(s, 0x1b) < 0 {
		return utf8.RuneCountInString(s)
	}
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			j := strings.IndexByte(s[i:], 'm')
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}
