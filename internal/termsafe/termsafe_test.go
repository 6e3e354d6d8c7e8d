package termsafe

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStrip(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Hello, world.\n\tindented", "Hello, world.\n\tindented"},
		{"unicode", "héllo → 世界 🔑", "héllo → 世界 🔑"},
		{"osc 52 clipboard write (BEL)", "a\x1b]52;c;ZWNobyBwd25lZA==\x07b", "ab"},
		{"osc title (ST)", "a\x1b]0;pwned\x1b\\b", "ab"},
		{"csi erase line and cursor up", "x\x1b[2K\x1b[1Ay", "xy"},
		{"csi colour", "\x1b[31mred\x1b[0m", "red"},
		{"carriage return spoof", "safe\rrm -rf ~", "saferm -rf ~"},
		{"backspace and bell", "a\bb\x07c", "abc"},
		{"del", "a\x7fb", "ab"},
		{"c1 csi", "a\u009b2Kb", "ab"},
		{"c1 osc", "a\u009d0;title\u009cb", "ab"},
		{"c1 other", "a\u0085b", "ab"},
		{"dcs", "a\x1bPq#0;2;0;0;0\x1b\\b", "ab"},
		{"charset", "a\x1b(Bb", "ab"},
		{"unterminated osc", "a\x1b]52;c;AAAA", "a"},
		{"lone esc at end", "a\x1b", "a"},
		{"nul", "a\x00b", "ab"},
		{"invalid utf8 becomes U+FFFD", "a\xffb", "a\uFFFDb"},
		{"a removed control cannot join bytes into a C1", "\xc2\r\x9b", "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(Strip([]byte(tt.in))))
			assert.Equal(t, tt.want, String(tt.in))
			assert.Equal(t, tt.in != tt.want, Needed([]byte(tt.in)))
		})
	}
}

func TestStripPlainIsNotCopied(t *testing.T) {
	p := []byte("plain text")
	assert.Same(t, &p[0], &Strip(p)[0])
}

func FuzzStrip(f *testing.F) {
	for _, s := range []string{"a\x1b]52;c;x\x07b", "\x1b[2K", "\u009b1m", "héllo"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		out := Strip(p)
		assert.False(t, Needed(out), "%q still has controls", out)
		assert.Equal(t, out, Strip(out), "idempotent")
	})
}
