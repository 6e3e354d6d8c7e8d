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
	}{
		{name: "logged out", wantJSON: `{"logged_in": false, "auth": null,
			"pool": {"size": 0, "active": 0, "rotated": false, "rotation": false, "indicator": "", "keys": []},
			"keyring": "off", "agent_dir": "DIR"}`,
			wantHuman: []string{"Not logged in (run piauth login)", "Key pool: empty", "Keyring: off"}},
		{name: "logged in with a rotated pool", auth: login, pool: true, wantJSON: `{"logged_in": true,
			"auth": {"type": "oauth", "account": "user1@example.com", "masked": "` + keystore.Mask(access) + `",
			         "expires_at": "2026-11-29T01:12:00Z", "expires_in_s": 25920, "expired": false, "pooled_as": 2},
			"pool": {"size": 3, "active": 2, "rotated": true, "rotation": true, "indicator": "🔑 2/3 (rotated)", "keys": [
			  {"index": 1, "fingerprint": "` + keystore.Fingerprint(k1) + `", "masked": "` + keystore.Mask(k1) + `", "kind": "oauth",
			   "label": "spare", "account": "", "active": false, "state": "cooling", "expires_at": null, "expired": false, "can_refresh": false,
			   "cooldown_until": "2026-11-28T18:12:00Z", "cooldown_reason": "rate_limit", "needs_reauth": false, "in_keyring": false},
			  {"index": 2, "fingerprint": "` + keystore.Fingerprint(access) + `", "masked": "` + keystore.Mask(access) + `", "kind": "oauth",
			   "label": "work", "account": "pooled@example.com", "active": true, "state": "active", "expires_at": "2026-11-29T01:00:00Z", "expired": false, "can_refresh": true,
			   "cooldown_until": null, "cooldown_reason": "", "needs_reauth": false, "in_keyring": false},
			  {"index": 3, "fingerprint": "` + keystore.Fingerprint(k3) + `", "masked": "` + keystore.Mask(k3) + `", "kind": "api",
			   "label": "", "account": "", "active": false, "state": "needs-reauth", "expires_at": null, "expired": false, "can_refresh": false,
			   "cooldown_until": null, "cooldown_reason": "", "needs_reauth": true, "in_keyring": false}]},
			"keyring": "off", "agent_dir": "DIR"}`,
			wantHuman: []string{
				"Logged in as user1@example.com (oauth)",
				"expires  in 7h 12m (2026-11-29T01:12:00Z)",
				"pooled   as key 2/3",
				"Key pool: 3 keys, 🔑 2/3 (rotated)",
				"key 1  " + keystore.Mask(k1) + "  spare  cooling down until 2026-11-28T18:12:00Z (rate_limit, in 12m)",
				"* key 2",
				"key 3  " + keystore.Mask(k3) + "  needs a new login",
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

			require.Equal(t, 0, js.code, js.err)
			require.Equal(t, 0, human.code, human.err)
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
			assert.Empty(t, js.err)
			assert.Empty(t, human.err)
			assertNoToken(t, []string{access, refresh, k1, k3}, js.out, human.out)
			assert.Zero(t, env.emu.Stats().Refreshes, "status never refreshes")
		})
	}
}
