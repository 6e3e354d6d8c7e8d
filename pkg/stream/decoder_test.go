package stream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ev struct{ name, data string }

func decodeAll(t *testing.T, r io.Reader) ([]ev, error) {
	t.Helper()
	return decodeAllSize(t, r, readBufSize)
}

// decodeAllSize is decodeAll with a NewDecoderSize of size.
func decodeAllSize(t *testing.T, r io.Reader, size int) ([]ev, error) {
	t.Helper()
	d := NewDecoderSize(r, size)
	var out []ev
	for d.Next() {
		e := d.Event()
		out = append(out, ev{e.Name, string(e.Data)})
	}
	return out, d.Err()
}

func TestDecoder(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	tests := []struct {
		name string
		in   string
		want []ev
	}{
		{"lf", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n", []ev{{"a", "1"}, {"b", "2"}}},
		{"crlf", "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n", []ev{{"a", "1"}, {"b", "2"}}},
		{"cr only", "event: a\rdata: 1\r\revent: b\rdata: 2\r\r", []ev{{"a", "1"}, {"b", "2"}}},
		{"cr then crlf blank", "data: 1\r\r\ndata: 2\n\n", []ev{{"", "1"}, {"", "2"}}},
		{"mixed ends", "event: a\r\ndata: 1\n\revent: b\rdata: 2\r\n\n", []ev{{"a", "1"}, {"b", "2"}}},
		{"comments ignored", ": hi\nevent: a\n:x\ndata: 1\n\n", []ev{{"a", "1"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\ndata: c\n\n", []ev{{"", "a\nb\n\nc"}}},
		{"no space after colon", "event:a\ndata:1\n\n", []ev{{"a", "1"}}},
		{"only one space stripped", "data:  two\n\n", []ev{{"", " two"}}},
		{"field without colon", "data\n\n", []ev{{"", ""}}},
		{"id and retry ignored", "id: 7\nretry: 100\nevent: a\ndata: 1\n\n", []ev{{"a", "1"}}},
		{"unknown field ignored", "foo: bar\ndata: 1\n\n", []ev{{"", "1"}}},
		{"event without data not dispatched", "event: a\n\ndata: 1\n\n", []ev{{"", "1"}}},
		{"blank lines only", "\n\n\r\n", nil},
		{"unknown event names kept", "event: shiny_new\ndata: {}\n\n", []ev{{"shiny_new", "{}"}}},
		{"4 MiB line", "event: content_block_delta\ndata: " + big + "\n\n", []ev{{"content_block_delta", big}}},
		{"complete event without final blank line", "data: 1\n\ndata: 2\n", []ev{{"", "1"}, {"", "2"}}},
		{"event cut mid-line dropped", "data: 1\n\ndata: {\"a\":", []ev{{"", "1"}}},
		{"event cut after CR line", "data: 1\r", []ev{{"", "1"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(tt.in)}, {"byte-at-a-time", iotest.OneByteReader(strings.NewReader(tt.in))}} {
				got, err := decodeAll(t, r.r)
				require.NoError(t, err, r.name)
				assert.Equal(t, tt.want, got, r.name)
			}
			// bufio's smallest buffer (every line here spills) and a
			// proxy's 32 KB decode alike.
			for _, size := range []int{16, 32 << 10} {
				got, err := decodeAllSize(t, strings.NewReader(tt.in), size)
				require.NoError(t, err, "size %d", size)
				assert.Equal(t, tt.want, got, "size %d", size)
			}
		})
	}
}

func TestDecoderDataValidUntilNext(t *testing.T) {
	d := NewDecoder(strings.NewReader("data: first\n\ndata: second\n\n"))
	require.True(t, d.Next())
	first := bytes.Clone(d.Event().Data)
	require.True(t, d.Next())
	assert.Equal(t, "first", string(first))
	assert.Equal(t, "second", string(d.Event().Data))
	assert.False(t, d.Next())
	assert.False(t, d.Next(), "stays done")
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestDecoderReadErrorAndClose(t *testing.T) {
	boom := errors.New("boom")
	d := NewDecoder(io.MultiReader(strings.NewReader("data: 1\n\ndata: 2"), iotest.ErrReader(boom)))
	require.True(t, d.Next())
	assert.False(t, d.Next())
	assert.ErrorIs(t, d.Err(), boom)

	rc := &closeRecorder{Reader: strings.NewReader("")}
	d = NewDecoder(rc)
	require.NoError(t, d.Close())
	assert.True(t, rc.closed)
	assert.NoError(t, NewDecoder(strings.NewReader("")).Close(), "non-closer")
}

func TestDecoderEventBound(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		max     int
		wantErr bool
		events  int
	}{
		{"within", "data: " + strings.Repeat("x", 900) + "\n\n", 1000, false, 1},
		{"one long line", "data: " + strings.Repeat("x", 70_000) + "\n\n", 64 << 10, true, 0},
		{"many lines add up", strings.Repeat("data: "+strings.Repeat("y", 100)+"\n", 20) + "\n", 1000, true, 0},
		{"a long comment line", ": " + strings.Repeat("z", 70_000) + "\ndata: ok\n\n", 64 << 10, true, 0},
		{"events before the long one arrive", "data: a\n\ndata: " + strings.Repeat("x", 70_000) + "\n\n", 64 << 10, true, 1},
		{"CR only", "data: " + strings.Repeat("x", 2000) + "\r\r", 1000, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(tt.stream))
			d.SetMaxEvent(tt.max)
			n := 0
			for d.Next() {
				n++
			}
			assert.Equal(t, tt.events, n)
			if tt.wantErr {
				assert.ErrorIs(t, d.Err(), ErrEventTooLarge)
			} else {
				assert.NoError(t, d.Err())
			}
		})
	}
	// The default bound holds without a call.
	big := "data: " + strings.Repeat("x", MaxEventBytes+1) + "\n\n"
	d := NewDecoder(strings.NewReader(big))
	assert.False(t, d.Next())
	assert.ErrorIs(t, d.Err(), ErrEventTooLarge)
}
