package keystore

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPoolFollow(t *testing.T) {
	tok := func(s string) string { return "sk-ant-oat01-" + strings.Repeat(s, 24) }
	p := &Pool{}
	p.Add(tok("a"), KeyState{Label: "other"})
	p.Add(tok("b"), KeyState{Label: "work"})
	p.Replace(1, tok("c"))
	p.Replace(1, tok("d"))
	tests := []struct {
		name string
		fp   string
		want int
	}{
		{"current key", Fingerprint(tok("a")), 0},
		{"one refresh ago", Fingerprint(tok("c")), 1},
		{"two refreshes ago is too far", Fingerprint(tok("b")), -1},
		{"never pooled", Fingerprint(tok("e")), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, p.Follow(tt.fp))
		})
	}
	assert.Equal(t, "work", p.State(1).Label)
	assert.Equal(t, Fingerprint(tok("c")), p.State(1).Replaces)
}
