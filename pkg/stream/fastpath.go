package stream

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// The hot event of every stream is a content_block_delta carrying a string:
//
//	{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}
//
// parseStringDelta recognises exactly that compact layout (with optional
// trailing whitespace) for text, thinking and input_json deltas without
// encoding/json. Anything else returns ok=false and takes the general path.

const (
	fpPrefix = `{"type":"content_block_delta","index":`
	fpDelta  = `,"delta":{"type":"`
)

// Delta kinds taken by the fast path, with the bytes that follow fpDelta.
const (
	fastText = iota
	fastThinking
	fastJSON

	fpText     = `text_delta","text":"`
	fpThinking = `thinking_delta","thinking":"`
	fpJSON     = `input_json_delta","partial_json":"`
)

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// parseStringDelta returns the block index, the delta kind (fastText…) and the
// raw (still escaped) string content. escaped reports whether it contains a
// backslash.
func parseStringDelta(data []byte) (index, kind int, raw []byte, escaped, ok bool) {
	if !hasPrefix(data, fpPrefix) {
		return 0, 0, nil, false, false
	}
	p := data[len(fpPrefix):]
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' && n < 9 {
		index = index*10 + int(p[n]-'0')
		n++
	}
	if n == 0 || n > 1 && p[0] == '0' || !hasPrefix(p[n:], fpDelta) {
		return 0, 0, nil, false, false
	}
	p = p[n+len(fpDelta):]
	switch {
	case hasPrefix(p, fpText):
		kind, p = fastText, p[len(fpText):]
	case hasPrefix(p, fpThinking):
		kind, p = fastThinking, p[len(fpThinking):]
	case hasPrefix(p, fpJSON):
		kind, p = fastJSON, p[len(fpJSON):]
	default:
		return 0, 0, nil, false, false
	}
	// Scan the string: stop at the first unescaped quote; reject raw control bytes.
	i := 0
	for ; i < len(p); i++ {
		c := p[i]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			i++
			continue
		}
		if c < 0x20 {
			return 0, 0, nil, false, false
		}
	}
	if i >= len(p) {
		return 0, 0, nil, false, false
	}
	raw, p = p[:i], p[i+1:]
	if len(p) < 2 || p[0] != '}' {
		return 0, 0, nil, false, false
	}
	p = p[1:]
	for len(p) > 0 && isJSONSpace(p[0]) {
		p = p[1:]
	}
	if len(p) == 0 || p[0] != '}' {
		return 0, 0, nil, false, false
	}
	for _, c := range p[1:] {
		if !isJSONSpace(c) {
			return 0, 0, nil, false, false
		}
	}
	if !escaped && !utf8.Valid(raw) {
		return 0, 0, nil, false, false
	}
	return index, kind, raw, escaped, true
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// appendUnescaped appends the JSON string body raw (without quotes) to dst,
// decoding escapes. ok is false on a malformed escape or invalid UTF-8.
func appendUnescaped(dst, raw []byte) ([]byte, bool) {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			if !utf8.Valid(raw) {
				return dst, false
			}
			return append(dst, raw...), true
		}
		if !utf8.Valid(raw[:i]) {
			return dst, false
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		if len(raw) < 2 {
			return dst, false
		}
		switch raw[1] {
		case '"', '\\', '/':
			dst = append(dst, raw[1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[2:])
			if !ok {
				return dst, false
			}
			raw = raw[6:]
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					if v, ok := hex4(raw[2:]); ok {
						r2 = v
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r, raw = dec, raw[6:]
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		raw = raw[2:]
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
