// Package termsafe makes remote text safe to print on a terminal. Model
// output, thinking, tool names, labels and error texts come from servers and
// files piauth does not control; on a terminal an escape sequence in them
// could write the clipboard (OSC 52), retitle the window, move the cursor
// and erase lines to spoof a prompt. Strip removes every C0 control but tab
// and newline, DEL, every C1 control (as UTF-8 U+0080..U+009F), and the
// ESC-introduced sequences whole (CSI, OSC, DCS, APC, PM, SOS, and two-byte
// escapes), so what is left is plain text.
package termsafe

import (
	"unicode/utf8"
)

// Needed reports whether p holds anything Strip would remove or replace
// (controls, escapes, invalid UTF-8). It is the fast path: plain text (the
// usual case) is printed without a copy.
func Needed(p []byte) bool {
	if !utf8.Valid(p) {
		return true
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
			return true
		}
		if c == 0xc2 && i+1 < len(p) && p[i+1] >= 0x80 && p[i+1] <= 0x9f {
			return true // a C1 control encoded in UTF-8
		}
	}
	return false
}

// Strip returns p without control characters and escape sequences (see the
// package doc). Carriage returns are dropped too: a lone CR rewrites the line
// it ends. It returns p itself when there is nothing to strip.
func Strip(p []byte) []byte {
	if !Needed(p) {
		return p
	}
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == 0x1b: // ESC
			i = skipEscape(p, i+1)
		case c == 0xc2 && i+1 < len(p) && p[i+1] >= 0x80 && p[i+1] <= 0x9f:
			i = skipC1(p, p[i+1], i+2)
		case c < 0x20 && c != '\t' && c != '\n', c == 0x7f:
			i++
		default:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				// A stray byte becomes U+FFFD: left as it is, it could join
				// with the next one into a C1 control once a control between
				// them is gone.
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p[i:i+size]...)
			}
			i += size
		}
	}
	return out
}

// String is Strip for strings.
func String(s string) string {
	if !Needed([]byte(s)) {
		return s
	}
	return string(Strip([]byte(s)))
}

// skipEscape skips the sequence after an ESC at p[i-1] and returns the index
// after it.
func skipEscape(p []byte, i int) int {
	if i >= len(p) {
		return i
	}
	switch p[i] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40..0x7e
		i++
		for i < len(p) && (p[i] < 0x40 || p[i] > 0x7e) {
			i++
		}
		return min(i+1, len(p))
	case ']', 'P', '_', '^', 'X': // OSC, DCS, APC, PM, SOS: up to BEL or ST
		return skipString(p, i+1)
	}
	// Two-byte escapes (and charset selections ESC ( B): skip intermediates
	// 0x20..0x2f and one final byte.
	for i < len(p) && p[i] >= 0x20 && p[i] <= 0x2f {
		i++
	}
	return min(i+1, len(p))
}

// skipC1 skips a C1 control c (U+0080..U+009F) whose encoding ends before i,
// with the string or parameters it introduces.
func skipC1(p []byte, c byte, i int) int {
	switch c {
	case 0x9b: // CSI
		for i < len(p) && (p[i] < 0x40 || p[i] > 0x7e) {
			i++
		}
		return min(i+1, len(p))
	case 0x9d, 0x90, 0x9f, 0x9e, 0x98: // OSC, DCS, APC, PM, SOS
		return skipString(p, i)
	}
	return i
}

// skipString skips a control string up to and including its terminator: BEL,
// ESC \ or C1 ST (U+009C); an unterminated string runs to the end.
func skipString(p []byte, i int) int {
	for i < len(p) {
		switch {
		case p[i] == 0x07:
			return i + 1
		case p[i] == 0x1b && i+1 < len(p) && p[i+1] == '\\':
			return i + 2
		case p[i] == 0xc2 && i+1 < len(p) && p[i+1] == 0x9c:
			return i + 2
		}
		i++
	}
	return i
}

// Writer strips what is written through it. It keeps no state between
// writes beyond what one Write holds, so callers must write whole events
// (a sequence split across two writes is stripped by pieces: the ESC goes,
// the rest of it stays as plain text, still harmless).
type Writer struct {
	W interface{ Write([]byte) (int, error) }
}

// Write writes Strip(p) and reports len(p) on success.
func (w Writer) Write(p []byte) (int, error) {
	if _, err := w.W.Write(Strip(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
