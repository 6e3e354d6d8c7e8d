package ledger

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Writer defaults.
const (
	DefaultBuffer      = 4096                  // rows queued at most
	DefaultEnqueueWait = 50 * time.Millisecond // wait for room before a row is dropped
	maxBatch           = 512                   // rows per transaction
)

// WriterOptions tune NewWriter.
type WriterOptions struct {
	Buffer      int                           // queue size (DefaultBuffer when 0)
	EnqueueWait time.Duration                 // DefaultEnqueueWait when 0
	Warn        func(format string, a ...any) // told once, at the first failed write; nil: silent
}

// Writer records entries off the request path: Record queues, one goroutine
// writes the queue in transactions. A row is dropped only when the queue
// stays full for EnqueueWait, or after Close; every dropped or failed row is
// counted and Close reports them.
type Writer struct {
	db   *DB
	opts WriterOptions
	ch   chan Entry
	done chan struct{}

	mu     sync.RWMutex // held for reading while queueing, for writing by Close
	closed bool

	dropped, failed atomic.Int64
	warnOnce        sync.Once
}

// NewWriter starts a Writer on db. Close it to flush.
func NewWriter(db *DB, opts WriterOptions) *Writer {
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	if opts.EnqueueWait <= 0 {
		opts.EnqueueWait = DefaultEnqueueWait
	}
	w := &Writer{db: db, opts: opts, ch: make(chan Entry, opts.Buffer), done: make(chan struct{})}
	go w.run()
	return w
}

// Record queues e; it never waits on the disk.
func (w *Writer) Record(ctx context.Context, e Entry) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.ch <- e:
		return
	default:
	}
	t := time.NewTimer(w.opts.EnqueueWait)
	defer t.Stop()
	select {
	case w.ch <- e:
	case <-t.C:
		w.dropped.Add(1)
	case <-ctx.Done():
		w.dropped.Add(1)
	}
}

// run writes queued rows until the queue is closed and empty.
func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Entry, 0, maxBatch)
	for e := range w.ch {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < maxBatch {
			select {
			case e, ok := <-w.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if err := w.write(batch); err != nil {
			w.failed.Add(int64(len(batch)))
			w.warnOnce.Do(func() {
				if w.opts.Warn != nil {
					w.opts.Warn("%v; requests go on unrecorded", err)
				}
			})
		}
	}
}

// write records batch (one row alone needs no transaction).
func (w *Writer) write(batch []Entry) error {
	ctx := context.Background() // a row is written whoever asked for it
	if len(batch) == 1 {
		return w.db.Record(ctx, batch[0])
	}
	return w.db.RecordAll(ctx, batch)
}

// Dropped is the number of rows dropped (queue full, or after Close).
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Failed is the number of rows the database refused.
func (w *Writer) Failed() int64 { return w.failed.Load() }

// Close stops queueing, writes what is queued (until ctx is done) and
// returns an error counting the rows that were dropped or not written.
// It does not close the DB.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("ledger: flush: %w (%d rows still queued)", ctx.Err(), len(w.ch))
	}
	if d, f := w.Dropped(), w.Failed(); d+f > 0 {
		return fmt.Errorf("ledger %s: %d rows dropped (queue full), %d not written", w.db.Path(), d, f)
	}
	return nil
}
