package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real `piauth chat --stream` against an upstream that streams one 200 MB
// SSE line: chat stops with a clear error at the decoder's 16 MiB bound and
// its peak RSS (ru_maxrss) stays bounded.
func TestReliabilityChatLongLine(t *testing.T) {
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "chatline"), authToken("ort", "chatline"), time.Now().Add(time.Hour)))
	up, sent := longLineUpstream(t, false)

	cmd := exec.Command(piauthBinary(t), "--dir", env.dir, "--keyring", "off", "chat", "--stream", "hi")
	cmd.Env = relEnv(map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": t.TempDir()})
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, stderr.String())
	assert.Equal(t, exitError, ee.ExitCode())
	assert.Contains(t, stderr.String(), "event too large (over 16777216 bytes)")
	select {
	case n := <-sent:
		assert.Less(t, n, int64(longLineBytes), "chat stopped reading")
	case <-time.After(30 * time.Second):
		t.Fatal("upstream still writing")
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	require.True(t, ok, "no rusage on this system")
	peak := int((ru.Maxrss + 1023) / 1024) // KB on Linux
	relResult(t, "peak_rss_mb_on_200mb_line", peak)
	assert.LessOrEqual(t, peak, maxProxyRSSMB)
}
