package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

func TestStatus(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	access, refresh := authToken("oat", "st"), authToken("ort", "st")
	k1, k3 := authToken("oat", "s1"), authToken("api", "s3")
	login := oauthCred(access, refresh, now.Add(7*time.Hour+12*time.Minute))
	login["account"] = "user1@example.com"
	cooling := now.Add(12 * time.Minute)
	poolKeys := []string{k1, access, k3}
	poolStates := []keystore.KeyState{
		{Label: "spare", CooldownUntil: cooling, CooldownReason: "rate_limit"},
		{Label: "work", Account: "pooled@example.com", Refresh: refresh, Expires: now.Add(7 * time.Hour).UnixMilli()},
		{NeedsReauth: true},
	}
	tests := []struct {
		name      string
		auth      map[string]any
		pool      bool
		wantJSON  string
		wantHuman []string
		wantCode  int
	}{
		{name: "logged out", wantCode: 3, wantJSON: `{"logged_in": false, "uses": "none", "auth": null,
			"pool": {"size": 0, "active": 0, "rotated": false, "rotation": false, "indicator": "", "keys": []},
			"keyring": "off", "agent_dir": "DIR"}`,
			wantHuman: []string{"Not logged in (run piauth login)", "Key pool: empty", "Keyring: off"}},
		{name: "logged in with a rotated pool", auth: login, pool: true, wantJSON: `{"logged_in": true, "uses": "pool",
			"auth": {"type": "oauth", "account": "user1@example.com", "masked": "` + keystore.Mask(access) + `",
			         "expires_at": "2026-11-29T01:12:00Z", "expires_in_s": 25920, "expired": false, "pooled_as": 2},
			"pool": {"size": 3, "active": 2, "rotated": true, "rotation": true, "indicator": "🔑 2/3 (rotated)", "keys": [
			  {"index": 1, "fingerprint": "` + keystore.Fingerprint(k1) + `", "masked": "` + keystore.Mask(k1) + `", "kind": "oauth",
			   "label": "spare", "account": "", "active": false, "state": "cooling", "reason": "rate-limited", "utilization": null, "expires_at": null, "expired": false, "can_refresh": false,
			   "cooldown_until": "2026-11-28T18:12:00Z", "cooldown_reason": "rate_limit", "needs_reauth": false, "in_keyring": false},
			  {"index": 2, "fingerprint": "` + keystore.Fingerprint(access) + `", "masked": "` + keystore.Mask(access) + `", "kind": "oauth",
			   "label": "work", "account": "pooled@example.com", "active": true, "state": "active", "reason": "", "utilization": null, "expires_at": "2026-11-29T01:00:00Z", "expired": false, "can_refresh": true,
			   "cooldown_until": null, "cooldown_reason": "", "needs_reauth": false, "in_keyring": false},
			  {"index": 3, "fingerprint": "` + keystore.Fingerprint(k3) + `", "masked": "` + keystore.Mask(k3) + `", "kind": "api",
			   "label": "", "account": "", "active": false, "state": "needs-reauth", "reason": "refused and could not be refreshed; piauth login --add-to-pool", "utilization": null, "expires_at": null, "expired": false, "can_refresh": false,
			   "cooldown_until": null, "cooldown_reason": "", "needs_reauth": true, "in_keyring": false}]},
			"keyring": "off", "agent_dir": "DIR"}`,
			wantHuman: []string{
				"Logged in as user1@example.com (oauth)",
				"expires  in 7h12m (2026-11-29T01:12:00Z)",
				"pooled   as key 2/3",
				"Key pool: 3 keys, 🔑 2/3 (rotated)",
				"key 1  " + keystore.Mask(k1) + "  spare  cooling until 18:12:00 (in 12m), rate-limited",
				"* key 2",
				"key 3  " + keystore.Mask(k3) + "  needs-reauth: refused and could not be refreshed; piauth login --add-to-pool",
			}},
		{name: "expired login, account from the pool", pool: true,
			auth:      oauthCred(access, refresh, now.Add(-3*time.Minute)),
			wantHuman: []string{"Logged in as pooled@example.com (oauth)", "expired 3m ago (2026-11-28T17:57:00Z); refreshed on next use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.now = now
			env.writeAuth(t, tt.auth)
			if tt.pool {
				env.seedPool(t, 1, true, poolKeys, poolStates)
			}

			js := env.run(t, "", "status", "--json")
			human := env.run(t, "", "status")

			require.Equal(t, tt.wantCode, js.code, js.err)
			require.Equal(t, tt.wantCode, human.code, human.err)
			if tt.wantJSON != "" {
				var want any
				require.NoError(t, json.Unmarshal([]byte(tt.wantJSON), &want))
				want.(map[string]any)["agent_dir"] = env.dir
				wantB, _ := json.Marshal(want)
				assert.JSONEq(t, string(wantB), js.out)
			}
			for _, want := range tt.wantHuman {
				assert.Contains(t, human.out, want)
			}
			assert.Empty(t, js.err, "the report says it all; nothing on stderr")
			assert.Empty(t, human.err)
			assertNoToken(t, []string{access, refresh, k1, k3}, js.out, human.out)
			assert.Zero(t, env.emu.Stats().Refreshes, "status never refreshes")
		})
	}
}

func TestStatusUsesAndExitCode(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	access, refresh := authToken("oat", "su"), authToken("ort", "su")
	k1, k2 := authToken("oat", "u1"), authToken("oat", "u2")
	tests := []struct {
		name      string
		login     bool
		keys      []string
		states    []keystore.KeyState
		wantUses  string
		wantCode  int
		wantHuman string
	}{
		{"one key, no login: the key is used", false, []string{k1}, nil, "pool", 0, "Key pool: 1 key, used for every request (no login), 🔑 1/1"},
		{"one key and a login: the login is used", true, []string{k1}, nil, "login", 0, "Key pool: 1 key, not used: requests use the login"},
		{"two keys and a login: the pool rotates", true, []string{k1, k2}, nil, "pool", 0, "Key pool: 2 keys, 🔑 1/2"},
		{"no login, every key dead", false, []string{k1, k2}, []keystore.KeyState{{NeedsReauth: true}, {Disabled: true}}, "pool", 3, "disabled: OAuth is not allowed"},
		{"no login, a cooling key frees later", false, []string{k1}, []keystore.KeyState{{CooldownUntil: now.Add(time.Minute), CooldownReason: "rate_limit"}}, "pool", 0, "cooling until 18:01:00 (in 1m), rate-limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newAuthEnv(t)
			env.now = now
			if tt.login {
				env.writeAuth(t, oauthCred(access, refresh, now.Add(time.Hour)))
			}
			states := tt.states
			if states == nil {
				states = make([]keystore.KeyState, len(tt.keys))
			}
			env.seedPool(t, 0, false, tt.keys, states)
			js := env.run(t, "", "status", "--json")
			human := env.run(t, "", "status")
			assert.Equal(t, tt.wantCode, js.code, js.err)
			assert.Equal(t, tt.wantCode, human.code, human.err)
			var got struct {
				Uses string `json:"uses"`
			}
			require.NoError(t, json.Unmarshal([]byte(js.out), &got))
			assert.Equal(t, tt.wantUses, got.Uses)
			assert.Contains(t, human.out, tt.wantHuman)
		})
	}
}

func TestStatusShowsCachedUsage(t *testing.T) {
	keys, states := threeAccounts()
	e := newUsageEnv(t, usageScenario, keys[:2], states[:2])
	require.Equal(t, 0, e.run(t, false, "usage").code)
	calls := e.emu.Stats().UsageCalls
	*e.clock = e.clock.Add(3 * time.Minute)

	r := e.run(t, false, "status")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "key 1  "+keystore.Mask(keys[0])+"  work  alpha@example.com  5h 72% · 7d 41% (usage 3m ago)  active")
	assert.NotContains(t, r.out, "key 2  "+keystore.Mask(keys[1])+"  spare  5h", "a failed answer leaves no figure")
	assert.Equal(t, calls, e.emu.Stats().UsageCalls, "status reads the cache only: no network")
}

func TestStatusCheck(t *testing.T) {
	good, bad, api := authToken("oat", "good"), authToken("oat", "invalid"), authToken("api", "apikey")
	tests := []struct {
		name     string
		login    string
		wantCode int
		want     []string
	}{
		{"every credential accepted", authToken("oat", "login"), 0,
			[]string{"✓ login: accepted", "✓ key 1: accepted", "✗ key 2: refused: usage endpoint: HTTP 401", "✓ key 3: accepted"}},
		{"the login is refused", authToken("oat", "invalidlogin"), 3,
			[]string{"✗ login: refused: usage endpoint: HTTP 401", "✓ key 1: accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newUsageEnv(t, `{}`, []string{good, bad, api}, make([]keystore.KeyState, 3))
			e.writeAuth(t, oauthCred(tt.login, authToken("ort", "login"), e.clock.Add(time.Hour)))
			r := e.run(t, false, "status", "--check")
			require.Equal(t, tt.wantCode, r.code, r.out+r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.out, w)
			}
			assert.Contains(t, r.out, "Online check:")
			assert.Empty(t, r.err)
			assertNoToken(t, []string{good, bad, api, tt.login}, r.out)
			assert.EqualValues(t, 0, e.calls(api), "an API key is checked with /v1/models, not the usage endpoint")
			p := e.pool(t)
			assert.Equal(t, keystore.StateReady, p.Status(1, *e.clock).State, "a refusal of the usage endpoint never marks a key")
			assert.False(t, p.State(1).NeedsReauth)

			js := e.run(t, false, "status", "--check", "--json")
			require.Equal(t, tt.wantCode, js.code)
			var doc statusJSON
			require.NoError(t, json.Unmarshal([]byte(js.out), &doc))
			require.Len(t, doc.Check, 4)
			assert.Equal(t, 0, doc.Check[0].Index, "the login first")
			assert.Equal(t, "refused", doc.Check[2].Result)
			assert.Equal(t, keystore.Fingerprint(bad), doc.Check[2].Fingerprint)

			plain := e.run(t, false, "status", "--json")
			assert.NotContains(t, plain.out, `"check"`, "no check without --check")
			assert.Equal(t, 0, plain.code, "without --check a refused login is not known")
		})
	}
}
