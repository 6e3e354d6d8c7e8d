package main

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// The service's Claude Code version floor is above what piauth sends: the
// first `piauth chat` process learns the required version from one 400 and
// retries once; the next processes, sharing the state dir, send it at once.
func TestClaudeCodeVersionLearntAcrossProcesses(t *testing.T) {
	sc, err := emulator.ParseScenario([]byte(`{"service": {"version_floors": {"claude-sonnet-5-5": "2.1.400"}}}`))
	require.NoError(t, err)
	emu := emulator.New(emulator.Options{Scenario: sc})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "version"), authToken("ort", "version"), time.Now().Add(time.Hour)))
	state := t.TempDir()
	vars := map[string]string{"PIAUTH_BASE_URL": srv.URL, "PIAUTH_STATE_DIR": state}

	first := relRun(t, vars, "", "--dir", env.dir, "--keyring", "off", "chat", "hi")
	require.Equal(t, 0, first.code, first.err)
	assert.Contains(t, first.err, "the service requires Claude Code 2.1.400")
	st := emu.Stats()
	assert.Equal(t, int64(1), st.VersionRefused)
	assert.Equal(t, int64(2), st.Requests["/v1/messages"], "one extra request")
	l, err := keystore.ReadLearned(filepath.Join(state, keystore.LearnedFileName))
	require.NoError(t, err)
	assert.Equal(t, "2.1.400", l.ClaudeCodeVersion)

	for range 2 {
		p := relRun(t, vars, "", "--dir", env.dir, "--keyring", "off", "chat", "hi")
		require.Equal(t, 0, p.code, p.err)
		assert.NotContains(t, p.err, "requires Claude Code")
	}
	st = emu.Stats()
	assert.Equal(t, int64(1), st.VersionRefused, "never again, in any process")
	assert.Equal(t, int64(4), st.Requests["/v1/messages"])
}
