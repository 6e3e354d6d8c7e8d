package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

// concurrent_writers_lost: 64 processes (16 with -short) at once mixing `key
// add --stdin`, `key use`, chat rotations past rate-limited keys and `token`
// refreshes of expired keys, on one agent dir with the real keyring. Nothing
// may be lost: every added key is in the file and in the keyring, the state
// parses, and every refresh token kept is live at the emulator.
func TestReliabilityConcurrentWriters(t *testing.T) {
	n := relSize(16, 64)
	env := newAuthEnv(t)
	svc := testenv.KeyringService(t)
	piauthBinary(t)
	vars := env.vars()
	vars["PIAUTH_KEYRING_SERVICE"] = svc

	// Pool: two expired OAuth keys that can refresh, then two rate-limited ones.
	expired := time.Now().Add(-time.Minute).UnixMilli()
	seeded := []string{authToken("oat", "cwA"), authToken("oat", "cwB"), chatToken("ratelimited-cw1"), chatToken("ratelimited-cw2")}
	s, err := keystore.Open(keystore.Options{Dir: env.dir, Mode: keystore.ModeOn, Service: svc})
	require.NoError(t, err)
	_, err = s.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Add(seeded[0], keystore.KeyState{Label: "A", Refresh: authToken("ort", "cwA"), Expires: expired})
		p.Add(seeded[1], keystore.KeyState{Label: "B", Refresh: authToken("ort", "cwB"), Expires: expired})
		p.Add(seeded[2], keystore.KeyState{Label: "rl1"})
		p.Add(seeded[3], keystore.KeyState{Label: "rl2"})
		p.Active = 2 // a rate-limited key: the first chats rotate
		return nil
	})
	require.NoError(t, err)

	added := map[int]string{}
	procs := make([]relProc, n)
	kinds := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		var args []string
		stdin := ""
		switch i % 4 {
		case 0:
			key := testKey("oat01", 5000+i)
			added[i], stdin = key, key+"\n"
			args = []string{"key", "add", "--stdin", "--label", "w" + strconv.Itoa(i)}
		case 1:
			args = []string{"key", "use", strconv.Itoa(1 + (i/4)%4)}
		case 2:
			args = []string{"chat", "hi"}
		case 3:
			args = []string{"token"}
		}
		kinds[i] = strings.Join(args[:min(2, len(args))], " ")
		wg.Go(func() {
			procs[i] = relRun(t, vars, stdin, append([]string{"--dir", env.dir, "--keyring", "on"}, args...)...)
		})
	}
	wg.Wait()
	for i, p := range procs {
		assert.Equal(t, 0, p.code, "process %d (%s): %s", i, kinds[i], p.err)
		assert.False(t, p.panicked())
	}
	// Make sure both refreshable keys have been refreshed at least once (a
	// no-op when the race already did), then check nothing was lost.
	for _, k := range []string{"1", "2"} {
		r := relRun(t, vars, "", "--dir", env.dir, "--keyring", "on", "key", "use", k)
		require.Equal(t, 0, r.code, r.err)
		r = relRun(t, vars, "", "--dir", env.dir, "--keyring", "on", "token")
		require.Equal(t, 0, r.code, r.err)
	}

	lost := 0
	p := readPool(t, env.dir) // parses, state included
	inKeyring := map[string]bool{}
	for _, u := range testenv.SecretToolUsers(t, svc) {
		inKeyring[u] = true
	}
	for i, key := range added {
		if p.Find(key) < 0 {
			lost++
			t.Errorf("process %d: added key missing from the file", i)
		}
		if !inKeyring["key:"+keystore.Fingerprint(key)] {
			lost++
			t.Errorf("process %d: added key missing from the keyring", i)
		}
	}
	for i, key := range p.Keys {
		if !inKeyring["key:"+keystore.Fingerprint(key)] {
			lost++
			t.Errorf("pooled key %d (%s) not mirrored in the keyring", i+1, p.State(i).Label)
		}
	}
	assert.Len(t, p.Keys, len(seeded)+len(added))
	refreshable := 0
	for i := range p.Keys {
		st := p.State(i)
		if st.Refresh == "" {
			continue
		}
		refreshable++
		assert.Greater(t, st.Expires, time.Now().UnixMilli(), "key %d: the refreshed expiry was kept", i+1)
		assert.NotContains(t, []string{authToken("ort", "cwA"), authToken("ort", "cwB")}, st.Refresh, "key %d was refreshed", i+1)
		if !refreshLive(t, env, st.Refresh) {
			lost++
			t.Errorf("key %d (%s): its refresh token is dead: a newer one was lost", i+1, st.Label)
		}
	}
	assert.Equal(t, 2, refreshable)
	stats := env.emu.Stats()
	t.Logf("%d processes; emulator: %d refreshes, %d rejected refreshes, %d rate-limited replies",
		n, stats.Refreshes, stats.RejectedRefreshes, stats.Tokens[emulator.Fingerprint(seeded[2])]+stats.Tokens[emulator.Fingerprint(seeded[3])])
	assert.Zero(t, stats.RejectedRefreshes, "no process refreshed with a stale refresh token")
	relResult(t, "concurrent_writers_lost", lost)
}

// refreshLive spends rt at the emulator's token endpoint: true when accepted.
func refreshLive(t *testing.T, env *authEnv, rt string) bool {
	t.Helper()
	body := fmt.Sprintf(`{"grant_type":"refresh_token","refresh_token":%q,"client_id":%q}`, rt, pkce.ClientID)
	resp, err := http.Post(env.url+"/v1/oauth/token", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
