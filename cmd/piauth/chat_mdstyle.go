package main

import (
	"bytes"
	"regexp"
	"strings"
	"unicode/utf8"
)

// mdStyle renders one markdown block for a terminal: headings bold, code
// blocks indented (and coloured), list items with bullets, quotes with a
// bar, rules as a line, tables as written; in paragraphs, **strong**,
// *emphasis*, `code` and [links](url) are styled. Lines are word-wrapped at
// width, line breaks of the source kept. Without colour the text keeps its
// markup (as glamour's notty style does) and only the layout changes.
//
// It is written here rather than taken from glamour: glamour links chroma,
// whose package init (every lexer and style registered) costs every piauth
// process tens of milliseconds and ~12 MB before main runs, whatever the
// command.
type mdStyle struct {
	width int
	color bool
}

// SGR sequences of the coloured style.
const (
	sgrReset   = "\x1b[m"
	sgrBold    = "\x1b[1m"
	sgrItalic  = "\x1b[3m"
	sgrCode    = "\x1b[38;5;203m" // inline code
	sgrBlock   = "\x1b[38;5;250m" // code block lines
	sgrHeading = "\x1b[1;38;5;39m"
	sgrDim     = "\x1b[2m"
)

var (
	mdListItem  = regexp.MustCompile(`^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$`)
	mdQuoteLine = regexp.MustCompile(`^\s{0,3}>\s?(.*)$`)
	mdRuleLine  = regexp.MustCompile(`^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$`)
	mdInline    = regexp.MustCompile("`[^`]+`|\\*\\*[^*]+\\*\\*|__[^_]+__|\\*[^*\\s][^*]*\\*|\\[[^\\]]+\\]\\([^)\\s]+\\)")
)

// render returns block rendered, each line ending in "\n", with a margin of
// two spaces.
func (s mdStyle) render(block []byte) []byte {
	lines := strings.Split(strings.TrimRight(string(block), "\n"), "\n")
	var b strings.Builder
	if len(lines) > 0 && openingFence([]byte(lines[0])) != nil {
		s.code(&b, lines)
		return []byte(b.String())
	}
	for _, l := range lines {
		switch {
		case isHeading([]byte(l)):
			t := strings.TrimSpace(l)
			s.wrap(&b, "  ", "  ", s.paint(sgrHeading, t))
		case mdRuleLine.MatchString(l):
			b.WriteString("  " + strings.Repeat("─", max(3, min(s.width-4, 40))) + "\n")
		case strings.HasPrefix(strings.TrimSpace(l), "|"):
			b.WriteString("  " + strings.TrimSpace(l) + "\n")
		default:
			if m := mdListItem.FindStringSubmatch(l); m != nil {
				bullet := m[2]
				if strings.ContainsAny(bullet, "-*+") {
					bullet = "•"
				}
				indent := "  " + m[1]
				s.wrap(&b, indent+bullet+" ", indent+strings.Repeat(" ", utf8.RuneCountInString(bullet)+1), s.inline(m[3]))
			} else if m := mdQuoteLine.FindStringSubmatch(l); m != nil {
				s.wrap(&b, "  │ ", "  │ ", s.inline(m[1]))
			} else if strings.TrimSpace(l) == "" {
				b.WriteString("\n")
			} else {
				s.wrap(&b, "  ", "  ", s.inline(strings.TrimSpace(l)))
			}
		}
	}
	return []byte(b.String())
}

// code writes a fenced block's lines, indented, without the fences.
func (s mdStyle) code(b *strings.Builder, lines []string) {
	marker := openingFence([]byte(lines[0]))
	body := lines[1:]
	if n := len(body); n > 0 && closesFence([]byte(body[n-1]), marker) {
		body = body[:n-1]
	}
	for _, l := range body {
		l = strings.ReplaceAll(l, "\t", "    ")
		if l == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + s.paint(sgrBlock, l) + "\n")
	}
}

// paint wraps t in an SGR sequence when colour is on.
func (s mdStyle) paint(sgr, t string) string {
	if !s.color || t == "" {
		return t
	}
	return sgr + t + sgrReset
}

// inline styles a paragraph's spans when colour is on.
func (s mdStyle) inline(t string) string {
	if !s.color {
		return t
	}
	return mdInline.ReplaceAllStringFunc(t, func(m string) string {
		switch {
		case strings.HasPrefix(m, "`"):
			return sgrCode + m[1:len(m)-1] + sgrReset
		case strings.HasPrefix(m, "**"), strings.HasPrefix(m, "__"):
			return sgrBold + m[2:len(m)-2] + sgrReset
		case strings.HasPrefix(m, "*"):
			return sgrItalic + m[1:len(m)-1] + sgrReset
		default: // [text](url)
			text, url, _ := strings.Cut(m[1:len(m)-1], "](")
			return sgrBold + text + sgrReset + " " + sgrDim + url + sgrReset
		}
	})
}

// wrap writes t word-wrapped at the style's width: first before the first
// line, rest before the others. Widths count runes, not escape sequences.
func (s mdStyle) wrap(b *strings.Builder, first, rest, t string) {
	limit := max(s.width-1, 20)
	b.WriteString(first)
	col := visibleLen(first)
	for i, w := range strings.Fields(t) {
		n := visibleLen(w)
		if i > 0 && col+1+n > limit {
			b.WriteString("\n" + rest)
			col = visibleLen(rest)
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += n
	}
	b.WriteByte('\n')
}

// visibleLen is the number of runes of s outside escape sequences.
func visibleLen(s string) int {
	if strings.IndexByte(s, 0x1b) < 0 {
		return utf8.RuneCountInString(s)
	}
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			j := bytes.IndexByte([]byte(s[i:]), 'm')
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
