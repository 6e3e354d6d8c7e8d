package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event is one server-sent event.
type Event struct {
	// Name is the event: field ("" when the event had none).
	Name string
	// Data is the data: lines joined with "\n". It aliases the decoder's
	// buffer and is valid only until the next call to Next.
	Data []byte
}

// Decoder reads server-sent events (per the WHATWG SSE spec) from a stream.
// Use it as an iterator:
//
//	for d.Next() { ev := d.Event(); … }
//	if err := d.Err(); err != nil { … }
//
// An event (its lines, and the data they add up to) may hold at most
// MaxEventBytes, else Next fails with ErrEventTooLarge (SetMaxEvent changes
// the bound); memory stays bounded whatever the server sends. LF, CRLF and CR
// line ends are accepted; comments
// and the id:/retry: fields are ignored. At EOF, an event whose last line was
// complete but which lacks the closing blank line is still dispatched (the
// connection closed right after it; the spec and the SDK drop it, but its
// data is whole). An event cut by EOF in the middle of a line is dropped.
// A stream using only CR line ends is buffered until the next LF or EOF.
type Decoder struct {
	r    *bufio.Reader
	c    io.Closer
	line []byte // spill buffer for lines longer than the bufio buffer
	rest []byte // unprocessed CR-separated lines from the current read
	// inRest is true while d.rest holds lines (the last one may be empty).
	inRest bool
	// cut is true when EOF arrived in the middle of a line.
	cut bool
	// spilled is true when the current line lives in d.line.
	spilled bool
	name    string
	data    []byte
	// hasData is true once a data: line arrived for the pending event.
	hasData bool
	ev      Event
	err     error
	eof     bool
	max     int // the longest event accepted, in bytes
}

// MaxEventBytes is the default bound of one event: far above any real one
// (a large tool input or a web_fetch result of a few MB), far below what
// would hurt.
const MaxEventBytes = 16 << 20

// ErrEventTooLarge is the Decoder's error for an event (or one line) over
// its bound.
var ErrEventTooLarge = errors.New("event too large")

// SetMaxEvent sets the largest event (and line) d accepts, in bytes; n ≤ 0
// restores MaxEventBytes.
func (d *Decoder) SetMaxEvent(n int) {
	if n <= 0 {
		n = MaxEventBytes
	}
	d.max = n
}

func (d *Decoder) tooLarge() error {
	return fmt.Errorf("read event stream: %w (over %d bytes)", ErrEventTooLarge, d.max)
}

// readBufSize is the bufio buffer size; longer lines spill into Decoder.line.
const readBufSize = 16 << 10

// NewDecoder returns a Decoder reading r. If r is an io.Closer, Close closes it.
func NewDecoder(r io.Reader) *Decoder { return NewDecoderSize(r, readBufSize) }

// NewDecoderSize is NewDecoder reading r size bytes at most at a time (the
// bufio buffer; longer lines still decode). A larger size means fewer reads
// when much is waiting, e.g. a proxy forwarding a stream it fell behind.
func NewDecoderSize(r io.Reader, size int) *Decoder {
	d := &Decoder{r: bufio.NewReaderSize(r, size), max: MaxEventBytes}
	d.c, _ = r.(io.Closer)
	return d
}

// Next advances to the next event. It returns false at the end of the stream
// or on a read error (see Err).
func (d *Decoder) Next() bool {
	if d.err != nil {
		return false
	}
	for {
		if d.inRest {
			if d.processRest() {
				return true
			}
			if d.err != nil {
				return false
			}
			continue
		}
		if d.eof {
			if d.cut {
				d.hasData = false // the event was cut mid-line: drop it
			}
			return d.dispatch()
		}
		line, complete, err := d.readLine()
		if errors.Is(err, ErrEventTooLarge) {
			d.err = d.tooLarge()
			return false
		}
		if err != nil {
			d.err = fmt.Errorf("read event stream: %w", err)
			return false
		}
		if !complete {
			d.eof = true
			i := bytes.LastIndexByte(line, '\r')
			d.cut = len(line) > i+1
			if i >= 0 {
				// CR-terminated lines before the tail are complete.
				d.rest, d.inRest = line[:i], true
			}
			continue
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			d.rest, d.inRest = line, true
			continue
		}
		if d.processLine(line) {
			return true
		}
		if d.err != nil {
			return false
		}
	}
}

// processRest handles the next of the CR-separated lines held in d.rest;
// every segment, the last included, is a complete line.
func (d *Decoder) processRest() bool {
	l := d.rest
	if i := bytes.IndexByte(d.rest, '\r'); i >= 0 {
		l, d.rest = d.rest[:i], d.rest[i+1:]
	} else {
		d.rest, d.inRest = nil, false
	}
	return d.processLine(l)
}

// readLine returns the next line without its LF. complete is false when EOF
// cut the stream before an LF. The slice is valid until the next read.
func (d *Decoder) readLine() (line []byte, complete bool, err error) {
	d.line = d.line[:0]
	d.spilled = false
	for {
		chunk, err := d.r.ReadSlice('\n')
		switch {
		case err == nil:
			if len(d.line) > 0 {
				if len(d.line)+len(chunk) > d.max {
					return nil, false, ErrEventTooLarge
				}
				d.line = appendDoubling(d.line, chunk)
				chunk = d.line
				d.spilled = true
			}
			chunk = chunk[:len(chunk)-1]
			if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
				chunk = chunk[:n-1] // CRLF
			}
			return chunk, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(d.line)+len(chunk) > d.max {
				return nil, false, ErrEventTooLarge
			}
			d.line = appendDoubling(d.line, chunk)
		case errors.Is(err, io.EOF):
			if len(d.line)+len(chunk) > d.max {
				return nil, false, ErrEventTooLarge
			}
			d.line = append(d.line, chunk...)
			return d.line, false, nil
		default:
			return nil, false, err
		}
	}
}

// appendDoubling appends src to dst, at least doubling the capacity when it
// must grow, so that long lines cost O(n) copying.
func appendDoubling(dst, src []byte) []byte {
	if cap(dst)-len(dst) < len(src) {
		n := make([]byte, len(dst), 2*cap(dst)+len(src))
		copy(n, dst)
		dst = n
	}
	return append(dst, src...)
}

// processLine applies one SSE line; it returns true when an event was dispatched.
func (d *Decoder) processLine(line []byte) bool {
	if len(line) == 0 {
		return d.dispatch()
	}
	if line[0] == ':' {
		return false // comment
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		if len(d.data)+len(value) >= d.max {
			d.err, d.hasData = d.tooLarge(), false
			return false
		}
		switch {
		case d.hasData:
			d.data = append(d.data, '\n')
			d.data = append(d.data, value...)
		case d.spilled && len(value) > cap(d.data):
			// A long line: take the spill buffer instead of copying it.
			d.data, d.line = value, d.data[:0]
			d.spilled = false
		default:
			d.data = append(d.data[:0], value...)
		}
		d.hasData = true
	case "event":
		d.name = internName(value)
	}
	return false
}

// dispatch emits the pending event, if it has data, and resets the state.
func (d *Decoder) dispatch() bool {
	if !d.hasData {
		d.name = ""
		return false
	}
	d.ev = Event{Name: d.name, Data: d.data}
	d.name, d.hasData = "", false
	d.data = d.data[:0] // the next event reuses the buffer after Next is called again
	return true
}

// internName returns the event name as a string without allocating for the
// Messages API's known event names.
func internName(b []byte) string {
	switch string(b) {
	case "content_block_delta":
		return "content_block_delta"
	case "content_block_start":
		return "content_block_start"
	case "content_block_stop":
		return "content_block_stop"
	case "message_start":
		return "message_start"
	case "message_delta":
		return "message_delta"
	case "message_stop":
		return "message_stop"
	case "ping":
		return "ping"
	case "error":
		return "error"
	}
	return string(b)
}

// Event returns the current event; its Data is valid until the next Next.
func (d *Decoder) Event() Event { return d.ev }

// Err returns the read error that stopped iteration, if any. A clean EOF is
// not an error (truncation is the accumulator's business).
func (d *Decoder) Err() error { return d.err }

// Close closes the underlying reader when it is an io.Closer.
func (d *Decoder) Close() error {
	if d.c == nil {
		return nil
	}
	return d.c.Close()
}
