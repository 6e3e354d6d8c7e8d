package secret

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMask(t *testing.T) {
	long := "sk-ant-oat01-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-wxyz"
	tests := []struct{ name, in, want string }{
		{"oauth access", long, "sk-ant-oat01-Ab…wxyz"},
		{"refresh", "sk-ant-ort01-Zy" + strings.Repeat("q", 30) + "9876", "sk-ant-ort01-Zy…9876"},
		{"api key", "sk-ant-api03-Kk" + strings.Repeat("r", 30) + "0000", "sk-ant-api03-Kk…0000"},
		{"short", "sk-ant-oat01", "****"},
		{"prefix with little after it", "sk-ant-oat01-abcdefg", "sk-ant-oat01-****"},
		{"not anthropic", "piauth-proxy-0123456789abcdef", "pi…cdef"},
		{"empty", "", "****"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Mask(tt.in)
			assert.Equal(t, tt.want, got)
			if len(tt.in) >= 16 {
				assert.NotContains(t, got, tt.in)
			}
		})
	}
}

func TestMaskAll(t *testing.T) {
	tok := "sk-ant-oat01-" + strings.Repeat("S", 40) + "tail"
	ref := "sk-ant-ort01-" + strings.Repeat("R", 40) + "rrrr"
	tests := []struct{ name, in, want string }{
		{"no secret", "all good", "all good"},
		{"one in text", `invalid x-api-key "` + tok + `" given`, `invalid x-api-key "sk-ant-oat01-SS…tail" given`},
		{"two", tok + "," + ref, "sk-ant-oat01-SS…tail,sk-ant-ort01-RR…rrrr"},
		{"at the end", "token=" + tok, "token=sk-ant-oat01-SS…tail"},
		{"bare marker", "sk-ant-", "****"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MaskAll(tt.in)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, tok)
			assert.NotContains(t, got, ref)
		})
	}
}

func TestFingerprint(t *testing.T) {
	// sha256("abc") = ba7816bf8f01cfea…
	assert.Equal(t, "ba7816bf8f01", Fingerprint("abc"))
	assert.Len(t, Fingerprint("sk-ant-oat01-x"), 12)
	assert.NotEqual(t, Fingerprint("a"), Fingerprint("b"))
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"oauth", "sk-ant-oat01-" + strings.Repeat("a", 40), nil},
		{"api", "sk-ant-api03-" + strings.Repeat("B_-9", 10), nil},
		{"refresh token", "sk-ant-ort01-" + strings.Repeat("a", 40), ErrRefreshToken},
		{"control character", "sk-ant-oat01-aaaa\x1b[2Kbbbbbbbb", ErrNotAKey},
		{"nul", "sk-ant-oat01-aaaaaaaa\x00", ErrNotAKey},
		{"space inside", "sk-ant-oat01-aaaa bbbbbbbb", ErrNotAKey},
		{"non-ascii", "sk-ant-oat01-aaaaaaaé", ErrNotAKey},
		{"not anthropic", "ghp_" + strings.Repeat("a", 36), ErrNotAKey},
		{"prefix only", "sk-ant-", ErrNotAKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKey(tt.tok)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
			if len(tt.tok) > 12 {
				assert.NotContains(t, err.Error(), tt.tok, "never the token itself")
			}
		})
	}
}

func TestMaskAllLeavesMaskedTokens(t *testing.T) {
	tok := "sk-ant-oat01-" + strings.Repeat("Ab", 30) + "wxyz"
	once := MaskAll("key " + tok + " refused")
	assert.Equal(t, "key "+Mask(tok)+" refused", once)
	assert.Equal(t, once, MaskAll(once), "masking twice changes nothing")
	assert.NotContains(t, MaskAll(tok+"…"+tok), tok, "a whole token after an ellipsis is still masked")
}
