package main

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/text"
)

// mdStyle renders one markdown block for a terminal. The block is parsed
// with goldmark (CommonMark with GFM's tables, strikethrough, autolinks and
// task lists) and its tree written out: headings bold and coloured, code
// blocks indented (no syntax highlighting), list items with bullets or
// numbers, quotes with a bar, rules as a line, tables in aligned columns;
// strong, emphasis, strikethrough, code spans and links styled, a link as
// "text (url)". Paragraphs are word-wrapped at width, their line breaks
// kept. Without colour nothing but ASCII marks the styles: *emphasis*,
// **strong**, ~~struck~~, `code`, "-" bullets, "> " quotes, "|" columns.
//
// goldmark rather than glamour: glamour links chroma, whose package init
// (every lexer and style registered) costs every piauth process tens of
// milliseconds and ~12 MB before main runs, whatever the command.
type mdStyle struct {
	width  int
	color  bool
	parser parser.Parser
}

// SGR sequences of the coloured style.
const (
	sgrReset   = "\x1b[m"
	sgrBold    = "\x1b[1m"
	sgrItalic  = "\x1b[3m"
	sgrStrike  = "\x1b[9m"
	sgrLink    = "\x1b[4m"
	sgrCode    = "\x1b[38;5;203m" // inline code
	sgrBlock   = "\x1b[38;5;250m" // code block lines
	sgrHeading = "\x1b[1;38;5;39m"
	sgrDim     = "\x1b[2m"
)

// newMDStyle is the style for lines wrapped at width, coloured or not.
func newMDStyle(width int, color bool) mdStyle {
	md := goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough,
		extension.Linkify, extension.TaskList))
	return mdStyle{width: width, color: color, parser: md.Parser()}
}

// render returns block rendered, each line ending in "\n", with a margin of
// two spaces; nothing if the block holds nothing to show.
func (s mdStyle) render(block []byte) []byte {
	doc := s.parser.Parse(text.NewReader(block))
	r := &mdRender{mdStyle: s, src: block}
	r.children(doc, "  ", "  ", false)
	return r.b.Bytes()
}

// mdRender is one block's rendering: its source and the output so far.
type mdRender struct {
	mdStyle
	src []byte
	b   bytes.Buffer
}

// mark returns the coloured style's mark, or the plain style's.
func (r *mdRender) mark(color, plain string) string {
	if r.color {
		return color
	}
	return plain
}

// children renders n's child blocks, the first after first, every other
// line after rest; a blank line between two children unless tight.
func (r *mdRender) children(n ast.Node, first, rest string, tight bool) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		if c != n.FirstChild() {
			if !tight {
				r.b.WriteString(strings.TrimRight(rest, " ") + "\n")
			}
			first = rest
		}
		r.block(c, first, rest)
	}
}

// block renders one block node.
func (r *mdRender) block(n ast.Node, first, rest string) {
	switch n := n.(type) {
	case *ast.Heading:
		t := newMDInline(r.color)
		t.text(sgrHeading, strings.Repeat("#", n.Level)+" ")
		r.inline(n, sgrHeading, t)
		r.wrap(t, first, rest)
	case *ast.Paragraph, *ast.TextBlock:
		t := newMDInline(r.color)
		r.inline(n, "", t)
		r.wrap(t, first, rest)
	case *ast.ThematicBreak:
		r.b.WriteString(first + strings.Repeat(r.mark("─", "-"), max(3, min(r.width-4, 40))) + "\n")
	case *ast.FencedCodeBlock, *ast.CodeBlock:
		r.code(n.Lines(), first, rest)
	case *ast.HTMLBlock:
		lines := n.Lines()
		if n.HasClosure() {
			lines.Append(n.ClosureLine)
		}
		r.verbatim(lines, first, rest, "", "")
	case *ast.Blockquote:
		bar := r.mark("│ ", "> ")
		r.children(n, first+bar, rest+bar, false)
	case *ast.List:
		r.list(n, first, rest)
	case *east.Table:
		r.table(n, first, rest)
	default:
		r.children(n, first, rest, false)
	}
}

// code writes a code block's lines, indented by two more spaces, tabs
// expanded, coloured but not highlighted.
func (r *mdRender) code(lines *text.Segments, first, rest string) {
	r.verbatim(lines, first, rest, "  ", sgrBlock)
}

// verbatim writes lines as they are, after indent, in sgr.
func (r *mdRender) verbatim(lines *text.Segments, first, rest, indent, sgr string) {
	for i := range lines.Len() {
		seg := lines.At(i)
		l := strings.Repeat(" ", seg.Padding) + string(seg.Value(r.src))
		l = strings.ReplaceAll(strings.TrimRight(l, "\r\n"), "\t", "    ")
		p := rest
		if i == 0 {
			p = first
		}
		if l == "" {
			r.b.WriteString(strings.TrimRight(p, " ") + "\n")
			continue
		}
		r.b.WriteString(p)
		r.b.WriteString(indent)
		if r.color && sgr != "" {
			r.b.WriteString(sgr)
			r.b.WriteString(l)
			r.b.WriteString(sgrReset)
		} else {
			r.b.WriteString(l)
		}
		r.b.WriteByte('\n')
	}
}

// list writes each item after its bullet or number, its lines under the
// item's first.
func (r *mdRender) list(n *ast.List, first, rest string) {
	i := 0
	for item := n.FirstChild(); item != nil; item = item.NextSibling() {
		marker := r.mark("•", "-")
		if n.IsOrdered() {
			marker = strconv.Itoa(n.Start+i) + string(n.Marker)
		}
		if i > 0 {
			if !n.IsTight {
				r.b.WriteString(strings.TrimRight(rest, " ") + "\n")
			}
			first = rest
		}
		if item.FirstChild() == nil {
			r.b.WriteString(first + marker + "\n")
		}
		r.children(item, first+marker+" ", rest+strings.Repeat(" ", visibleLen(marker)+1), n.IsTight)
		i++
	}
}

// table lays a table out in columns as wide as their widest cell, aligned
// as the delimiter row says, the header bold and ruled off.
func (r *mdRender) table(n *east.Table, first, rest string) {
	var rows [][]mdCell
	var widths []int
	for row := n.FirstChild(); row != nil; row = row.NextSibling() {
		_, header := row.(*east.TableHeader)
		var cells []mdCell
		for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
			t := newMDInline(r.color)
			sgr := ""
			if header {
				sgr = sgrBold
			}
			r.inline(cell, sgr, t)
			var c mdCell
			c.s, c.w = t.joined()
			if len(widths) <= len(cells) {
				widths = append(widths, 0)
			}
			widths[len(cells)] = max(widths[len(cells)], c.w)
			cells = append(cells, c)
		}
		rows = append(rows, cells)
	}
	sep := r.mark(" │ ", " | ")
	for i, cells := range rows {
		p := rest
		if i == 0 {
			p = first
		}
		var line strings.Builder
		for j, w := range widths {
			if j > 0 {
				line.WriteString(sep)
			}
			c := mdCell{}
			if j < len(cells) {
				c = cells[j]
			}
			align := east.AlignNone
			if j < len(n.Alignments) {
				align = n.Alignments[j]
			}
			line.WriteString(pad(c, w, align, j == len(widths)-1))
		}
		r.b.WriteString(strings.TrimRight(p+line.String(), " ") + "\n")
		if _, header := n.FirstChild().(*east.TableHeader); header && i == 0 {
			r.b.WriteString(rest + tableRule(widths, r.mark("─", "-"), r.mark("─┼─", "-|-")) + "\n")
		}
	}
}

// mdCell is a table cell's text, styled, and its width.
type mdCell struct {
	s string
	w int
}

// pad returns c padded to width w as align says; the last column is not
// padded on its right.
func pad(c mdCell, w int, align east.Alignment, last bool) string {
	gap := w - c.w
	left := 0
	switch align {
	case east.AlignRight:
		left = gap
	case east.AlignCenter:
		left = gap / 2
	}
	right := gap - left
	if last {
		right = 0
	}
	return strings.Repeat(" ", left) + c.s + strings.Repeat(" ", right)
}

// tableRule is the line under a table's header.
func tableRule(widths []int, line, cross string) string {
	parts := make([]string, len(widths))
	for i, w := range widths {
		parts[i] = strings.Repeat(line, w)
	}
	return strings.Join(parts, cross)
}

// inline adds n's inline children to t, styled with sgr and their own.
func (r *mdRender) inline(n ast.Node, sgr string, t *mdInline) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			t.text(sgr, textValue(c, r.src))
			if c.HardLineBreak() || c.SoftLineBreak() {
				t.breakLine()
			}
		case *ast.String:
			t.text(sgr, string(c.Value))
		case *ast.CodeSpan:
			t.span(sgr+sgrCode, "`", codeSpanText(c, r.src))
		case *ast.Emphasis:
			style, m := sgrItalic, "*"
			if c.Level >= 2 {
				style, m = sgrBold, "**"
			}
			r.styled(c, sgr, style, m, t)
		case *east.Strikethrough:
			r.styled(c, sgr, sgrStrike, "~~", t)
		case *ast.Link:
			r.link(c, string(c.Destination), sgr, t)
		case *ast.Image:
			r.link(c, string(c.Destination), sgr, t)
		case *ast.AutoLink:
			t.piece(sgr+sgrLink, string(c.Label(r.src)))
		case *ast.RawHTML:
			for i := range c.Segments.Len() {
				seg := c.Segments.At(i)
				t.text(sgr, string(seg.Value(r.src)))
			}
		case *east.TaskCheckBox:
			box := "[ ]"
			if c.IsChecked {
				box = "[x]"
			}
			t.piece(sgr, box)
			t.endWord()
		default:
			r.inline(c, sgr, t)
		}
	}
}

// styled adds n's children in style, between plain marks without colour.
func (r *mdRender) styled(n ast.Node, sgr, style, mark string, t *mdInline) {
	if !r.color {
		t.piece("", mark)
	}
	r.inline(n, sgr+style, t)
	if !r.color {
		t.piece("", mark)
	}
}

// link adds a link's text followed by its URL in parentheses, unless the
// text is the URL.
func (r *mdRender) link(n ast.Node, url, sgr string, t *mdInline) {
	outer := t.capture
	t.capture, t.plain = true, t.plain[:0]
	r.inline(n, sgr+sgrLink, t)
	same := strings.TrimSpace(string(t.plain)) == url
	t.capture = outer
	if url == "" || same {
		return
	}
	t.endWord()
	t.piece(sgr+sgrDim, "("+url+")")
}
