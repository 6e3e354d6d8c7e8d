package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real `piauth chat --stream` against an upstream that streams one 200 MB
// SSE line: chat stops with a clear error at the decoder's 16 MiB bound and
// its peak RSS (VmHWM, polled while it runs) stays bounded.
func TestReliabilityChatLongLine(t *testing.T) {
	env := newAuthEnv(t)
	env.writeAuth(t, oauthCred(authToken("oat", "chatline"), authToken("ort", "chatline"), time.Now().Add(time.Hour)))
	up, sent := longLineUpstream(t, false)

	cmd := exec.Command(piauthBinary(t), "--dir", env.dir, "--keyring", "off", "chat", "--stream", "hi")
	cmd.Env = relEnv(map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": t.TempDir()})
	var stderr strings.Builder
	cmd.Stderr = &stderr
	peak, err := runPeakRSS(t, cmd)
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
	relResult(t, "peak_rss_mb_on_200mb_line", peak)
	assert.LessOrEqual(t, peak, maxProxyRSSMB)
}

// runPeakRSS runs cmd and returns its peak RSS in MB: VmHWM polled every
// 2 ms until it exits. Not ru_maxrss: on Linux that includes the peak of the
// process that exec'd it (the mm the child ran in before exec), here the
// test binary's own.
func runPeakRSS(t *testing.T, cmd *exec.Cmd) (int, error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	peak := 0
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return peak, err
		case <-tick.C:
			if mb, ok := vmHWM(cmd.Process.Pid); ok {
				peak = max(peak, mb)
			}
		}
	}
}
