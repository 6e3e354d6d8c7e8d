package stream

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGeneratedStreams checks that the benchmark streams are well formed and
// that the SDK and piauth agree on them.
func TestGeneratedStreams(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for name, data := range map[string][]byte{
		"short": genShort(), "long": genText(n), "thinking_tools": genThinkingTools(n), "bigdelta": genBigDelta(4 << 20),
	} {
		t.Run(name, func(t *testing.T) {
			ours, err := ReadMessage(bytes.NewReader(data), nil, nil)
			require.NoError(t, err)
			sdk, err := sdkAccumulate(data)
			require.NoError(t, err)
			require.Len(t, ours.Content, len(sdk.Content))
			for i, b := range ours.Content {
				assert.Equal(t, sdk.Content[i].Text, b.Text, "block %d", i)
				assert.Equal(t, sdk.Content[i].Thinking, b.Thinking, "block %d", i)
				if isToolBlock(b.Type) {
					assert.JSONEq(t, string(sdk.Content[i].Input), string(b.Input))
				}
			}
			assert.Equal(t, sdk.Usage.OutputTokens, ours.Usage.OutputTokens)
		})
	}
}

var benchCases = []struct {
	name string
	gen  func() []byte
}{
	{"short", genShort},
	{"long", func() []byte { return genText(20000) }},
	{"thinking_tools", func() []byte { return genThinkingTools(2000) }},
	{"bigdelta", func() []byte { return genBigDelta(4 << 20) }},
}

// BenchmarkDecode decodes and accumulates the same bytes with piauth and
// with the official SDK (ssestream + Message.Accumulate).
func BenchmarkDecode(b *testing.B) {
	for _, bc := range benchCases {
		data := bc.gen()
		b.Run(bc.name+"/piauth", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadMessage(bytes.NewReader(data), nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/sdk", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sdkAccumulate(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScaling shows piauth's cost per delta stays flat as answers grow.
func BenchmarkScaling(b *testing.B) {
	for _, n := range []int{2500, 5000, 10000, 20000} {
		data := genText(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			start := time.Now()
			ops := 0
			for b.Loop() {
				if _, err := ReadMessage(bytes.NewReader(data), nil, nil); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops*n), "ns/delta")
		})
	}
}
