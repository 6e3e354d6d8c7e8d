package keystore

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
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

// BenchmarkAuth is Store.Auth on an auth.json that stays as it is (every
// proxied request asks twice) against one whose time moves before each call
// (read and parsed every time, as before authMemo); both set the file's time
// before each call.
func BenchmarkAuth(b *testing.B) {
	for _, changing := range []bool{false, true} {
		name := "unchanged"
		if changing {
			name = "changing"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Mode: ModeOff})
			if err != nil {
				b.Fatal(err)
			}
			doc := `{"other":{"type":"api_key","key":"x"},"anthropic":{"type":"oauth","access":"` + fakeTok("oat01", 1) +
				`","refresh":"` + fakeTok("ort01", 1) + `","expires":4102444800000}}`
			if err := os.WriteFile(s.AuthPath(), []byte(doc), 0o600); err != nil {
				b.Fatal(err)
			}
			mtime := time.Now().Add(-time.Hour)
			if err := os.Chtimes(s.AuthPath(), mtime, mtime); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if changing {
					mtime = mtime.Add(time.Millisecond)
				}
				// both sides pay the same syscall
				if err := os.Chtimes(s.AuthPath(), mtime, mtime); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Auth(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
