package main

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
)

// Model output, thinking and tool names that carry terminal escapes (an OSC
// 52 clipboard write, a window title, erase-line prompt spoofing) reach a
// real terminal as plain text; piped, the answer stays byte for byte.
func TestChatStripsEscapesOnATerminal(t *testing.T) {
	const evil = "safe \x1b]52;c;cm0gLXJmIH4=\x07text \x1b]0;owned\x1b\\ \x1b[2K\x1b[1A\rspoof"
	sc, err := emulator.ParseScenario([]byte(`{"reply": {"text": "` + jsonEscape(evil) + `", "deltas": 3,
		"thinking": "think \u001b[31mred\u001b[0m", "tool_calls": [{"name": "Read", "input": {"file_path": "/x"}}]}}`))
	require.NoError(t, err)
	srv := httptest.NewServer(emulator.New(emulator.Options{Scenario: sc}))
	t.Cleanup(srv.Close)
	env := newAuthEnv(t)
	env.url = srv.URL
	env.writeAuth(t, oauthCred(authToken("oat", "tty"), authToken("ort", "tty"), time.Now().Add(time.Hour)))
	vars := []string{"PIAUTH_BASE_URL=" + srv.URL, "PIAUTH_STATE_DIR=" + t.TempDir()}

	for _, args := range [][]string{{"hi"}, {"--stream", "--show-thinking", "hi"}} {
		p := startPTYEnv(t, vars, append([]string{"--dir", env.dir, "--keyring", "off", "chat"}, args...)...)
		code, out := p.wait()
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "safe ")
		assert.Contains(t, out, "spoof")
		assert.NotContains(t, out, "\x1b]", "no OSC reaches the terminal: %q", out)
		assert.NotContains(t, out, "\x1b[2K")
		assert.NotContains(t, out, "\x1b[31m")
		assert.NotContains(t, out, "\a")
	}

	// Piped, the answer is the API's text exactly (a script may want it).
	r := env.run(t, "", "chat", "hi")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, evil)
}

// jsonEscape quotes s for a JSON string literal (without the quotes).
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
