package emulator

import (
	"bufio"
	"unicode/utf8"
)

// vtext is base repeated up to n bytes, never materialised, so that huge
// replies cost no memory.
type vtext struct {
	base string
	n    int
}

func newVText(base string, repeat, size int) vtext {
	n := len(base) * max(repeat, 1)
	if size > 0 {
		n = size
	}
	if base == "" {
		n = 0
	}
	v := vtext{base: base, n: n}
	for v.n > 0 && !v.runeStart(v.n) {
		v.n-- // never cut a rune in half
	}
	return v
}

func (v vtext) runeStart(p int) bool {
	return p >= v.n || p%len(v.base) == 0 || utf8.RuneStart(v.base[p%len(v.base)])
}

// split returns up to k rune-aligned, non-empty ranges covering v.
func (v vtext) split(k int) [][2]int {
	if v.n == 0 {
		return nil
	}
	k = max(min(k, v.n), 1)
	out := make([][2]int, 0, k)
	prev := 0
	for i := 1; i <= k; i++ {
		p := v.n * i / k
		for !v.runeStart(p) {
			p++
		}
		if p > prev {
			out = append(out, [2]int{prev, p})
			prev = p
		}
	}
	return out
}

// writeRange writes bytes [a,b) of v JSON-escaped (without quotes).
func (v vtext) writeRange(w *bufio.Writer, a, b int) {
	for a < b {
		off := a % len(v.base)
		end := min(len(v.base), off+(b-a))
		escape(w, v.base[off:end])
		a += end - off
	}
}

const hexDigits = "0123456789abcdef"

// escape writes s as the inside of a JSON string.
func escape(w *bufio.Writer, s string) {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			w.WriteByte('\\')
			w.WriteByte(c)
		case '\n':
			w.WriteString(`\n`)
		case '\r':
			w.WriteString(`\r`)
		case '\t':
			w.WriteString(`\t`)
		default:
			w.WriteString(`\u00`)
			w.WriteByte(hexDigits[c>>4])
			w.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	w.WriteString(s[start:])
}

func quote(w *bufio.Writer, s string) {
	w.WriteByte('"')
	escape(w, s)
	w.WriteByte('"')
}
