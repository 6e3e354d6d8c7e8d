package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBaseURLRule(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     string
		wantErr  string
		wantWarn string
	}{
		{"default", nil, "https://api.anthropic.com", "", ""},
		{"ANTHROPIC_BASE_URL is for other clients, never ours", map[string]string{"ANTHROPIC_BASE_URL": "http://127.0.0.1:8787"}, "https://api.anthropic.com", "", ""},
		{"loopback http", map[string]string{"PIAUTH_BASE_URL": "http://127.0.0.1:9/"}, "http://127.0.0.1:9", "", ""},
		{"ipv6 loopback http", map[string]string{"PIAUTH_BASE_URL": "http://[::1]:9"}, "http://[::1]:9", "", ""},
		{"localhost http", map[string]string{"PIAUTH_BASE_URL": "http://localhost:9"}, "http://localhost:9", "", ""},
		{"plain http elsewhere is refused", map[string]string{"PIAUTH_BASE_URL": "http://10.0.0.5:8787"}, "", "plain http is allowed only to a loopback address", ""},
		{"https anthropic", map[string]string{"PIAUTH_BASE_URL": "https://api.anthropic.com"}, "https://api.anthropic.com", "", ""},
		{"https elsewhere warns", map[string]string{"PIAUTH_BASE_URL": "https://gateway.example.com"}, "https://gateway.example.com", "", "sends your Claude credentials to gateway.example.com, which is not Anthropic"},
		{"not a URL", map[string]string{"PIAUTH_BASE_URL": "ftp://x"}, "", "is not an http(s) URL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", tt.env)
			got, err := f.BaseURL()
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, exitUsage, exitCode(err))
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
			_, _ = f.BaseURL() // warned once, not twice
			if tt.wantWarn == "" {
				assert.Empty(t, bufs.Err.String())
			} else {
				assert.Equal(t, "piauth: warning: PIAUTH_BASE_URL "+tt.wantWarn+"\n", bufs.Err.String())
			}
		})
	}
}
