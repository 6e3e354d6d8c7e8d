package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGlobalUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		wantErr string
		wantOut string
	}{
		{name: "help lists exit codes", args: []string{"--help"}, code: 0, wantOut: "4    every key in the pool is rate-limited"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, wantErr: "flag provided but not defined"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, wantErr: `unknown command "frobnicate"`},
		{name: "bad keyring mode", args: []string{"--keyring", "maybe", "status"}, code: 2, wantErr: "--keyring must be auto, on or off"},
		{name: "bad keyring mode from env", args: []string{"status"}, env: map[string]string{"PIAUTH_KEYRING": "sometimes"}, code: 2, wantErr: "--keyring must be auto, on or off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", tt.env)
			code := run(context.Background(), f, append([]string{"piauth"}, tt.args...))
			assert.Equal(t, tt.code, code, "stderr: %s", bufs.Err)
			assert.Contains(t, bufs.Err.String(), tt.wantErr)
			assert.Contains(t, bufs.Out.String(), tt.wantOut)
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("boom"), 1},
		{"usage", usagef("bad %s", "arg"), 2},
		{"wrapped usage", fmt.Errorf("ctx: %w", usagef("bad")), 2},
		{"log in first", fmt.Errorf("status: %w", pkce.ErrNotLoggedIn), 3},
		{"refused by the API", &stream.APIError{Status: 401, Type: "authentication_error"}, 3},
		{"no usable key", fmt.Errorf("chat: %w", rotate.ErrNoUsableKey), 3},
		{"every key limited", &rotate.AllLimitedError{N: 2}, 4},
		{"the upstream refuses every key", &rotate.UpstreamRefusedError{Keys: 2}, 1},
		{"timeout", &httpx.TimeoutError{What: "no answer"}, 1},
		{"canceled", fmt.Errorf("stream: %w", context.Canceled), 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.code, exitCode(tt.err))
		})
	}
}

func TestNoColorFlagAndEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"--no-color", "status"}, nil},
		{"env", []string{"status"}, map[string]string{"NO_COLOR": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newTestFactory("", tc.env)
			f.IO.OutTTY, f.IO.ErrTTY = true, true
			require.True(t, f.IO.ColorOut())
			// Logged out: status reports it and exits 3 (nothing usable).
			require.Equal(t, exitNoKey, run(context.Background(), f, append([]string{"piauth", "--dir", t.TempDir()}, tc.args...)))
			assert.False(t, f.IO.ColorOut())
			assert.False(t, f.IO.ColorErr())
		})
	}
}
