package stream

import (
	"os"
	"testing"
)

// BenchmarkShape shapes a pi-style request (11 tools, 3 messages) and a
// pass-through request for an OAuth token.
func BenchmarkShape(b *testing.B) {
	body, err := os.ReadFile("testdata/shape/classifier_names.json")
	if err != nil {
		b.Fatal(err)
	}
	shaped, err := Shape(body, oauthTok)
	if err != nil {
		b.Fatal(err)
	}
	for name, in := range map[string][]byte{"shape": body, "shaped": shaped} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Shape(in, oauthTok); err != nil {
					b.Fatal(err)
				}
				_ = ToolNamesFor(in)
			}
		})
	}
}
