package proxy

import (
	"bytes"
	"net/http"
	"sync"
)

// eventBufs holds the buffers of events on their way to clients (a
// Proxy's). A stream takes one when an event arrives and gives it back at
// the flush before its next read from upstream, so a stream that waits
// (almost all of them, almost all the time) holds none.
type eventBufs struct{ pool sync.Pool }

func (b *eventBufs) get() *[]byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return buf
	}
	buf := make([]byte, 0, 1<<10)
	return &buf
}

// put gives buf back, unless it carried a huge event: that one is left to
// the collector.
func (b *eventBufs) put(buf *[]byte) {
	if cap(*buf) <= maxPooledEvents {
		*buf = (*buf)[:0]
		b.pool.Put(buf)
	}
}

// maxPooledEvents is the largest buffer eventBufs takes back.
const maxPooledEvents = 64 << 10

// eventWriter gathers server-sent events and writes them to a client.
type eventWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	bufs *eventBufs
	buf  *[]byte // nil while empty
}

func newEventWriter(w http.ResponseWriter, bufs *eventBufs) *eventWriter {
	return &eventWriter{w: w, rc: http.NewResponseController(w), bufs: bufs}
}

// event appends one event; multi-line data gets one data: line per line.
func (e *eventWriter) event(name string, data []byte) {
	if e.buf == nil {
		e.buf = e.bufs.get()
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
	e.bufs.put(e.buf)
	e.buf = nil
	if err != nil {
		return err
	}
	return e.rc.Flush()
}
