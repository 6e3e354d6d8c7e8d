package proxy

import (
	"bytes"
	"net/http"
	"sync"
)

// eventBufs holds the buffers of events on their way to a client. A stream
// takes one when an event arrives and gives it back at the flush before its
// next read from upstream, so a stream that waits (almost all of them, almost
// all the time) holds none.
var eventBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// maxPooledEvents is the largest buffer given back to eventBufs: one that
// carried a huge event is left to the collector.
const maxPooledEvents = 64 << 10

// eventWriter gathers server-sent events and writes them to a client.
type eventWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf *[]byte // nil while empty
}

func newEventWriter(w http.ResponseWriter) *eventWriter {
	return &eventWriter{w: w, rc: http.NewResponseController(w)}
}

// event appends one event; multi-line data gets one data: line per line.
func (e *eventWriter) event(name string, data []byte) {
	if e.buf == nil {
		e.buf = eventBufs.Get().(*[]byte)
	}
	b := *e.buf
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, '\n')
		if !more {
			break
		}
		data = rest
	}
	*e.buf = append(b, '\n')
}

// flush writes the events gathered to the client, flushes it and gives the
// buffer back.
func (e *eventWriter) flush() error {
	if e.buf == nil {
		return nil
	}
	_, err := e.w.Write(*e.buf)
	if cap(*e.buf) <= maxPooledEvents {
		*e.buf = (*e.buf)[:0]
		eventBufs.Put(e.buf)
	}
	e.buf = nil
	if err != nil {
		return err
	}
	return e.rc.Flush()
}
