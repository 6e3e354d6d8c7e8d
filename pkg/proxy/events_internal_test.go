package proxy

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventWriter(t *testing.T) {
	tests := []struct {
		name   string
		events [][2]string // name, data
		want   string
	}{
		{"one event", [][2]string{{"ping", `{"type":"ping"}`}}, "event: ping\ndata: {\"type\":\"ping\"}\n\n"},
		{"no name", [][2]string{{"", "x"}}, "data: x\n\n"},
		{"multi-line data", [][2]string{{"e", "a\nb\n"}}, "event: e\ndata: a\ndata: b\ndata: \n\n"},
		{"gathered until the flush", [][2]string{{"a", "1"}, {"b", "2"}}, "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e := newEventWriter(rec, &eventBufs{})
			for _, ev := range tt.events {
				e.event(ev[0], []byte(ev[1]))
			}
			assert.Empty(t, rec.Body.String(), "nothing is written before the flush")
			require.NoError(t, e.flush())
			assert.Equal(t, tt.want, rec.Body.String())
			assert.True(t, rec.Flushed)
			assert.Nil(t, e.buf, "a stream waiting for upstream holds no buffer")
		})
	}
}

func TestEventWriterFlushEmpty(t *testing.T) {
	rec := httptest.NewRecorder()
	e := newEventWriter(rec, &eventBufs{})
	require.NoError(t, e.flush())
	assert.False(t, rec.Flushed, "nothing gathered: no write, no flush")
	assert.Zero(t, rec.Body.Len())
}

func TestEventWriterHugeEventNotPooled(t *testing.T) {
	rec := httptest.NewRecorder()
	e := newEventWriter(rec, &eventBufs{})
	big := make([]byte, 2*maxPooledEvents)
	e.event("content_block_delta", big)
	held := e.buf
	require.NoError(t, e.flush())
	assert.Greater(t, cap(*held), maxPooledEvents)
	assert.NotZero(t, len(*held), "a buffer over the bound is left as it was, not reset and pooled")
	assert.Equal(t, len("event: content_block_delta\ndata: \n\n")+len(big), rec.Body.Len())
}
