package keystore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxFileSize bounds what piauth reads: its files are a few KB.
const maxFileSize = 16 << 20

// ReadFile reads one of piauth's small files the way piauth reads its own:
// never following a symlink, never blocking in open() (O_NONBLOCK: a FIFO in
// place of the file cannot hang the command), refusing what fstat says is not
// a regular file, and at most 16 MiB. A missing file is an error wrapping
// fs.ErrNotExist; the refusals are *MalformedError.
func ReadFile(path string) ([]byte, error) { return readFile(path, nil) }

// readFile is ReadFile that also calls warnMode when the file is group/other
// readable.
func readFile(path string, warnMode func(path string, mode fs.FileMode)) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return nil, &MalformedError{Path: path, Msg: fmt.Sprintf("is a symlink (to %s); refusing to follow or replace it", target)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &MalformedError{Path: path, Msg: "is not a regular file"}
	}
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, &MalformedError{Path: path, Msg: fmt.Sprintf("file too large (over %d bytes)", maxFileSize)}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && warnMode != nil {
		warnMode(path, perm)
	}
	return data, nil
}

// openRegular opens path for reading without following a symlink and without
// blocking (the file may have been swapped for a FIFO since it was looked at),
// then refuses what fstat says is not a regular file or is too large.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("read %s: %w", path, err)
	case !fi.Mode().IsRegular():
		err = &MalformedError{Path: path, Msg: "is not a regular file"}
	case fi.Size() > maxFileSize:
		err = &MalformedError{Path: path, Msg: fmt.Sprintf("file too large (%d bytes, limit %d)", fi.Size(), maxFileSize)}
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// doc is a validated JSON document: no syntax errors, no duplicate object keys
// at any level, nothing after the value. offs maps a JSON pointer ("/a/0/b")
// to the byte offset where that value starts, for positioned errors; it is
// built only when an error needs it, so a valid file is walked once.
type doc struct {
	path string
	data []byte
	offs map[string]int64
}

// parseDoc validates data as exactly one JSON value.
func parseDoc(path string, data []byte) (*doc, error) {
	d := &doc{path: path, data: data}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, d.errAt(0, "byte order mark not allowed (save the file as UTF-8 without BOM)")
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, d.errAt(int64(i), "binary data (NUL byte)")
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, d.errAt(int64(i), "invalid UTF-8")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, d.errAt(0, "empty file (expected a JSON object)")
	}
	// Unmarshal checks the whole input first, so syntax errors carry absolute
	// offsets (a Decoder's are relative to its buffer).
	var whole json.RawMessage
	if err := json.Unmarshal(data, &whole); err != nil {
		return nil, d.syntax(nil, err)
	}
	sc := dupScanner{data: data}
	if err := sc.value(); err != nil {
		return nil, err.(*dupKeyError).malformed(d)
	}
	return d, nil
}

// dupKeyError is a repeated object key found by dupScanner.
type dupKeyError struct {
	off int
	key string
}

func (e *dupKeyError) Error() string { return fmt.Sprintf("duplicate key %q", e.key) }

func (e *dupKeyError) malformed(d *doc) error { return d.errAt(int64(e.off), e.Error()) }

// dupScanner finds repeated object keys (which encoding/json silently
// merges) in one pass over JSON that is already known to be valid, without
// a token per value: it runs on every read of a pool of any size.
type dupScanner struct {
	data []byte
	i    int
}

func (s *dupScanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str skips the string at s.i and returns it with its quotes.
func (s *dupScanner) str() []byte {
	start := s.i
	for s.i++; s.data[s.i] != '"'; s.i++ {
		if s.data[s.i] == '\\' {
			s.i++
		}
	}
	s.i++
	return s.data[start:s.i]
}

func (s *dupScanner) value() error {
	s.ws()
	switch s.data[s.i] {
	case '{':
		s.i++
		seen := map[string]struct{}{}
		for {
			s.ws()
			if s.data[s.i] == '}' {
				s.i++
				return nil
			}
			off := s.i
			raw := s.str()
			key := string(raw[1 : len(raw)-1])
			if bytes.IndexByte(raw, '\\') >= 0 {
				_ = json.Unmarshal(raw, &key) // valid JSON: cannot fail
			}
			if _, dup := seen[key]; dup {
				return &dupKeyError{off: off, key: key}
			}
			seen[key] = struct{}{}
			s.ws()
			s.i++ // ':'
			if err := s.value(); err != nil {
				return err
			}
			s.ws()
			if s.data[s.i] == ',' {
				s.i++
			}
		}
	case '[':
		s.i++
		for {
			s.ws()
			if s.data[s.i] == ']' {
				s.i++
				return nil
			}
			if err := s.value(); err != nil {
				return err
			}
			s.ws()
			if s.data[s.i] == ',' {
				s.i++
			}
		}
	case '"':
		s.str()
	default: // number, true, false, null
		for s.i < len(s.data) && bytes.IndexByte([]byte(",]} \t\r\n"), s.data[s.i]) < 0 {
			s.i++
		}
	}
	return nil
}

// valueStart is where the next value begins after offset off (skipping
// whitespace, ':' and ',').
func (d *doc) valueStart(off int64) int64 {
	for off < int64(len(d.data)) && strings.IndexByte(" \t\r\n:,", d.data[off]) >= 0 {
		off++
	}
	return off
}

// walk stores the offset of the value at the decoder's position, and of
// everything inside it, under its JSON pointer (record), for positioned
// errors in a document already known to be valid.
func (d *doc) walk(dec *json.Decoder, ptr string, record bool) error {
	if record {
		d.offs[ptr] = d.valueStart(dec.InputOffset())
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			keyOff := d.valueStart(dec.InputOffset())
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			if seen[key] {
				return &MalformedError{Path: d.path, Line: -1, Col: int(keyOff), Msg: fmt.Sprintf("duplicate key %q", key)}
			}
			seen[key] = true
			child := ""
			if record {
				child = ptr + "/" + escapePtr(key)
			}
			if err := d.walk(dec, child, record); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			child := ""
			if record {
				child = ptr + "/" + strconv.Itoa(i)
			}
			if err := d.walk(dec, child, record); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // closing delimiter
	return err
}

// escapePtr escapes a JSON pointer token (RFC 6901: "~" → "~0", then "/" → "~1").
// It runs once per object key on every file read, so it must not build a
// strings.Replacer per call; ReplaceAll returns s as is when nothing matches.
func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// syntax converts a decoding error into a positioned *MalformedError.
func (d *doc) syntax(dec *json.Decoder, err error) error {
	var me *MalformedError
	if errors.As(err, &me) && me.Line == -1 { // duplicate key: Col holds the offset
		return d.errAt(int64(me.Col), me.Msg)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := se.Offset
		if off > 0 {
			off-- // Offset counts the offending byte as read
		}
		msg := strings.TrimPrefix(se.Error(), "json: ")
		switch {
		case strings.Contains(msg, "after top-level value"):
			off, msg = d.valueStart(off), "unexpected data after the JSON value"
		case strings.Contains(msg, "unexpected end of JSON input"):
			off, msg = int64(len(d.data)), "unexpected end of file (truncated JSON)"
		}
		return d.errAt(off, msg)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return d.errAt(int64(len(d.data)), "unexpected end of file (truncated JSON)")
	}
	var off int64
	if dec != nil {
		off = dec.InputOffset()
	}
	return d.errAt(off, err.Error())
}

// errAt builds a *MalformedError for byte offset off (1-based line and column,
// columns counted in runes).
func (d *doc) errAt(off int64, msg string) *MalformedError {
	if off > int64(len(d.data)) {
		off = int64(len(d.data))
	}
	before := d.data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	col := utf8.RuneCount(before[lineStart:]) + 1
	return &MalformedError{Path: d.path, Line: line, Col: col, Msg: msg}
}

// at is errAt for the value at JSON pointer ptr.
func (d *doc) at(ptr, msg string) *MalformedError {
	if d.offs == nil { // first error: record every value's offset (the document is valid JSON)
		d.offs = map[string]int64{}
		dec := json.NewDecoder(bytes.NewReader(d.data))
		dec.UseNumber()
		_ = d.walk(dec, "", true)
	}
	return d.errAt(d.offs[ptr], msg)
}

// decode unmarshals raw (the value at ptr) into v, reporting a type mismatch at
// the value's position as "NAME: expected WANT".
func (d *doc) decode(ptr string, raw json.RawMessage, v any, want string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return d.at(ptr, fmt.Sprintf("%q: expected %s", displayPtr(ptr), want))
	}
	return nil
}

func displayPtr(ptr string) string {
	s := strings.TrimPrefix(ptr, "/")
	s = strings.ReplaceAll(s, "/", ".")
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}

// object decodes the value at ptr as a JSON object of raw members.
func (d *doc) object(ptr string, raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '{' {
		name := displayPtr(ptr)
		if name == "" {
			return nil, d.at(ptr, "expected a JSON object")
		}
		return nil, d.at(ptr, fmt.Sprintf("%q: expected an object", name))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, d.at(ptr, err.Error())
	}
	return m, nil
}

// marshalObject writes members with sorted keys, indented by two spaces.
func marshalObject(m map[string]json.RawMessage) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readObjectFile reads a small JSON object file of piauth's (config.json,
// learned.json) strictly: top is nil when the file does not exist; a
// malformed file is a *MalformedError. d decodes the members with positions.
func readObjectFile(path string) (d *doc, top map[string]json.RawMessage, err error) {
	data, err := readFile(path, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if d, err = parseDoc(path, data); err != nil {
		return nil, nil, err
	}
	if top, err = d.object("", bytes.TrimSpace(data)); err != nil {
		return nil, nil, err
	}
	return d, top, nil
}
