package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Many goroutines recording at once: every row lands, in batches.
func TestWriterConcurrent(t *testing.T) {
	db := openTemp(t)
	w := NewWriter(db, WriterOptions{Buffer: 64, EnqueueWait: 5 * time.Second})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				w.Record(context.Background(), entry(time.Now(), "fp", "m", int64(g*100+i), 1))
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close(context.Background()))
	rep, err := db.Report(context.Background(), ReportOptions{By: ByModel})
	require.NoError(t, err)
	assert.EqualValues(t, 1600, rep.Totals.Requests)
	assert.EqualValues(t, 1599*1600/2, rep.Totals.Tokens.Input)
}

// A full queue drops after EnqueueWait, rows after Close are dropped, and
// Close counts both; a database that refuses rows is warned about once.
func TestWriterDropsAreCounted(t *testing.T) {
	db := openTemp(t)
	// Hold the write lock from a second connection so the writer stalls.
	other, err := Open(context.Background(), db.Path(), Options{BusyTimeout: time.Millisecond})
	require.NoError(t, err)
	defer other.Close()
	tx, err := other.db.Begin()
	require.NoError(t, err)
	_, err = tx.Exec("INSERT INTO requests (ts) VALUES (1)")
	require.NoError(t, err)

	slow, err := Open(context.Background(), db.Path(), Options{BusyTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer slow.Close()
	var warnings []string
	var mu sync.Mutex
	w := NewWriter(slow, WriterOptions{Buffer: 1, EnqueueWait: time.Millisecond, Warn: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, f)
	}})
	for range 20 {
		w.Record(context.Background(), entry(time.Now(), "fp", "m", 1, 1))
	}
	time.Sleep(500 * time.Millisecond) // past the busy timeout: the first row fails
	require.NoError(t, tx.Rollback())
	err = w.Close(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rows dropped")
	assert.Positive(t, w.Dropped())
	assert.Positive(t, w.Failed(), "the locked database refused the first rows")
	mu.Lock()
	assert.Len(t, warnings, 1)
	mu.Unlock()
	before := w.Dropped()
	w.Record(context.Background(), entry(time.Now(), "fp", "m", 1, 1))
	assert.Equal(t, before+1, w.Dropped(), "after Close: dropped and counted")
}
