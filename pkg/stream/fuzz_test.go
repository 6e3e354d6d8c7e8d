package stream

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/streams/*.sse")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("data: x\r\rdata: y\r\n\n"))
	f.Add([]byte(": c\nevent:\ndata\n\n"))
}

// FuzzDecoder checks that the decoder never panics and that splitting the
// input into one-byte reads does not change what it decodes.
func FuzzDecoder(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var whole []string
		d := NewDecoder(bytes.NewReader(in))
		for d.Next() {
			whole = append(whole, d.Event().Name+"\x00"+string(d.Event().Data))
		}
		if d.Err() != nil {
			t.Fatalf("error on an in-memory reader: %v", d.Err())
		}
		d = NewDecoder(&oneByteReader{in})
		i := 0
		for d.Next() {
			got := d.Event().Name + "\x00" + string(d.Event().Data)
			if i >= len(whole) || whole[i] != got {
				t.Fatalf("event %d differs when read byte by byte: %q", i, got)
			}
			i++
		}
		if d.Err() != nil {
			t.Fatalf("byte-by-byte read error: %v", d.Err())
		}
		if i != len(whole) {
			t.Fatalf("byte-by-byte read gave %d events, whole read %d", i, len(whole))
		}
	})
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0], r.b = r.b[0], r.b[1:]
	return 1, nil
}

// FuzzAccumulator checks that arbitrary streams never panic the accumulator
// and that a message it accepts always marshals to valid JSON.
func FuzzAccumulator(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		m, _ := ReadMessage(bytes.NewReader(in), nil, func(Delta) error { return nil })
		if m == nil {
			t.Fatal("nil message")
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
	})
}

// FuzzFastPath checks the hand-written content_block_delta scanner against
// encoding/json: whenever it accepts an event, it must agree on the index
// and the decoded string.
func FuzzFastPath(f *testing.F) {
	f.Add([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`))
	f.Add([]byte(`{"type":"content_block_delta","index":12,"delta":{"type":"thinking_delta","thinking":"a\u00e9\ud83d\ude00\n"}}  `))
	f.Add([]byte(`{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, kind, raw, escaped, ok := parseStringDelta(data)
		if !ok {
			return
		}
		got := raw
		if escaped {
			if got, ok = appendUnescaped(nil, raw); !ok {
				return
			}
		}
		var w struct {
			Index int `json:"index"`
			Delta struct {
				Text        *string `json:"text"`
				Thinking    *string `json:"thinking"`
				PartialJSON *string `json:"partial_json"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(data, &w); err != nil {
			t.Fatalf("fast path accepted invalid JSON %q: %v", data, err)
		}
		want := [...]*string{fastText: w.Delta.Text, fastThinking: w.Delta.Thinking, fastJSON: w.Delta.PartialJSON}[kind]
		if want == nil || *want != string(got) || w.Index != idx {
			t.Fatalf("fast path: index %d %q, encoding/json: index %d %v", idx, got, w.Index, want)
		}
	})
}
