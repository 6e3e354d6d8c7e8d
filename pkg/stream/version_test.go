package stream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequiredVersion(t *testing.T) {
	tooOld := `{"type":"error","error":{"type":"invalid_request_error","error_code":"claude_code_version_too_old",` +
		`"message":"Claude Code 2.1.75 does not support this model; version 2.1.251 or newer is required"}}`
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tooOld))}
	fromWire := CheckResponse(resp)
	var ae *APIError
	require.ErrorAs(t, fromWire, &ae)
	assert.Equal(t, CodeVersionTooOld, ae.Code, "error.error_code parsed")

	tests := []struct {
		name   string
		err    error
		want   string
		wantOK bool
	}{
		{"from the wire", fromWire, "2.1.251", true},
		{"wrapped", fmt.Errorf("attempt 1: %w", fromWire), "2.1.251", true},
		{"message only", &APIError{Status: 400, Type: "invalid_request_error", Message: "version 2.1.280 or newer is required"}, "2.1.280", true},
		{"code only", &APIError{Status: 400, Code: CodeVersionTooOld, Message: "too old"}, "", true},
		{"other 400", &APIError{Status: 400, Message: "max_tokens: too large"}, "", false},
		{"not a 400", &APIError{Status: 429, Message: "version 2.1.280 or newer is required"}, "", false},
		{"not an API error", errors.New("version 2.1.280 or newer is required"), "", false},
		{"nil", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RequiredVersion(tt.err)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewerVersion(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2.1.280", "2.1.251", true},
		{"2.1.251", "2.1.280", false},
		{"2.1.280", "2.1.280", false},
		{"2.1.100", "2.1.99", true}, // numeric, not lexical
		{"2.2", "2.1.999", true},    // missing patch
		{"2.1", "2.1.0", false},
		{"v2.1.300", "2.1.280", true},
		{"2.1.300 (Claude Code)", "2.1.280", true}, // claude --version output
		{"2.1.280", "", true},
		{"", "2.1.280", false},
		{"latest", "2.1.280", false},
		{"2.1.280", "latest", true},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			assert.Equal(t, tt.want, NewerVersion(tt.a, tt.b))
		})
	}
}
