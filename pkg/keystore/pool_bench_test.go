package keystore

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParsePool1000 parses a key-rotation.json of 1,000 pooled keys, the
// work `piauth key list` does before printing (scripts/bench.sh keylist_1000_ms).
func BenchmarkParsePool1000(b *testing.B) {
	p := &Pool{States: map[string]*KeyState{}}
	for i := range 1000 {
		tok := fmt.Sprintf("sk-ant-oat01-benchpool%04d-%s", i, strings.Repeat("AbCdEfGh", 10))
		p.Add(tok, KeyState{Label: fmt.Sprintf("key %d", i), Expires: 1767225600000})
	}
	data, err := p.marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parsePool("key-rotation.json", data); err != nil {
			b.Fatal(err)
		}
	}
}
