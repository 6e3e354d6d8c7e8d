package main

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refresh_race_calls: 16 `piauth token` processes on one expired credential
// cause exactly one call to the token endpoint; every process prints the
// one new, working token.
func TestReliabilityRefreshRace(t *testing.T) {
	env := newAuthEnv(t)
	old, oldRefresh := authToken("oat", "race"), authToken("ort", "race")
	env.writeAuth(t, oauthCred(old, oldRefresh, time.Now().Add(-time.Minute)))
	piauthBinary(t)

	const n = 16
	procs := make([]relProc, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { procs[i] = relRun(t, env.vars(), "", "--dir", env.dir, "--keyring", "off", "token") })
	}
	wg.Wait()

	calls := env.emu.Stats().Refreshes + env.emu.Stats().RejectedRefreshes
	relResult(t, "refresh_race_calls", calls)
	c := env.auth(t)
	require.NotEqual(t, old, c.Access)
	for i, p := range procs {
		assert.Equal(t, 0, p.code, "process %d: %s", i, p.err)
		assert.Equal(t, c.Access+"\n", p.out, "process %d", i)
		assertNoToken(t, []string{old, oldRefresh, c.Access, c.Refresh}, p.err)
	}
	assert.EqualValues(t, 1, calls)
	assert.True(t, env.usable(t, c.Access))
}
