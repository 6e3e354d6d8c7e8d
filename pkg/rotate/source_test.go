package rotate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
)

func TestModeFor(t *testing.T) {
	tests := []struct {
		keys     int
		loggedIn bool
		want     Mode
	}{
		{0, false, ModeNone},
		{0, true, ModeLogin},
		{1, false, ModePool}, // a pool of one key and no login is usable
		{1, true, ModeLogin}, // with a login, the login is used
		{2, false, ModePool},
		{2, true, ModePool}, // 2+ keys rotate, as the seed
		{5, true, ModePool},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ModeFor(tt.keys, tt.loggedIn), "%d keys, logged in %v", tt.keys, tt.loggedIn)
	}
}

// TestSourceToken: which credential `piauth token` (and every request) gets,
// against the emulator's token endpoint for the refreshes.
func TestSourceToken(t *testing.T) {
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	login := fakeTok("oat", "login")
	k1, k2 := fakeTok("oat", "key1"), fakeTok("oat", "key2")
	hour := clk.Now().Add(time.Hour).UnixMilli()
	past := clk.Now().Add(-time.Minute).UnixMilli()
	tests := []struct {
		name      string
		login     bool
		keys      []string
		states    map[string]keystore.KeyState
		active    int
		want      string // the token, or "new" for a refreshed one
		wantIndex int    // 1-based pool index, 0 for the login
		wantErr   error
		refreshes int64
	}{
		{name: "login only", login: true, want: login},
		{name: "one key, no login", keys: []string{k1}, want: k1, wantIndex: 1},
		{name: "one key and a login: the login", login: true, keys: []string{k1}, want: login},
		{name: "two keys: the active one", login: true, keys: []string{k1, k2}, active: 1, want: k2, wantIndex: 2},
		{name: "active key cooling: the next", keys: []string{k1, k2},
			states: map[string]keystore.KeyState{k1: {CooldownUntil: clk.Now().Add(time.Minute), CooldownReason: keystore.ReasonRateLimit}},
			want:   k2, wantIndex: 2},
		{name: "all cooling", login: true, keys: []string{k1, k2},
			states: map[string]keystore.KeyState{
				k1: {CooldownUntil: clk.Now().Add(time.Minute), CooldownReason: keystore.ReasonRateLimit},
				k2: {CooldownUntil: clk.Now().Add(2 * time.Minute), CooldownReason: keystore.ReasonRateLimit}},
			wantErr: ErrAllKeysLimited},
		{name: "needs-reauth is skipped", keys: []string{k1, k2},
			states: map[string]keystore.KeyState{k1: {NeedsReauth: true}}, want: k2, wantIndex: 2},
		{name: "every key needs a new login", keys: []string{k1, k2},
			states:  map[string]keystore.KeyState{k1: {NeedsReauth: true}, k2: {Disabled: true}},
			wantErr: ErrNoUsableKey},
		{name: "expired key is refreshed", keys: []string{k1, k2},
			states: map[string]keystore.KeyState{k1: {Expires: past, Refresh: fakeTok("ort", "r1")}},
			want:   "new", wantIndex: 1, refreshes: 1},
		{name: "expired login is refreshed", login: true, want: "new", refreshes: 1},
		{name: "nothing at all", wantErr: pkce.ErrNotLoggedIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Reset()
			dir := t.TempDir()
			s := openStore(t, dir, clk.Now)
			if tt.login {
				expires := hour
				if tt.name == "expired login is refreshed" {
					expires = past
				}
				writeLogin(t, dir, login, fakeTok("ort", "login"), expires)
			}
			seedPool(t, s, tt.keys, tt.states)
			if tt.active > 0 {
				_, err := s.UpdatePool(context.Background(), func(p *keystore.Pool) error { p.Active = tt.active; return nil })
				require.NoError(t, err)
			}
			src := &Source{Store: s, Refresher: tokenRefresher(s, url, clk.Now), Now: clk.Now}
			c, _, err := src.Token(context.Background(), false)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.True(t, NeedsLogin(err) || tt.wantErr == ErrAllKeysLimited, "%v", err)
				return
			}
			require.NoError(t, err)
			if tt.want == "new" {
				assert.NotContains(t, []string{login, k1, k2}, c.Token)
			} else {
				assert.Equal(t, tt.want, c.Token)
			}
			if tt.wantIndex > 0 {
				assert.True(t, c.Pooled)
				assert.Equal(t, tt.wantIndex, c.Index+1)
			} else {
				assert.False(t, c.Pooled)
			}
			assert.Equal(t, tt.refreshes, e.Stats().Refreshes)
		})
	}
}

// writeLogin writes auth.json with an OAuth login.
func writeLogin(t *testing.T, dir, access, refresh string, expires int64) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"anthropic": map[string]any{"type": "oauth", "access": access, "refresh": refresh, "expires": expires}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, keystore.AuthFileName), b, 0o600))
}
