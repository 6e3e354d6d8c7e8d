package keystore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPoolStatus(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	oat, api := "sk-ant-oat01-"+"status-test-key-0000000000", "sk-ant-api03-"+"status-test-key-0000000000"
	tests := []struct {
		name       string
		tok        string
		active     bool
		st         KeyState
		want       State
		wantReason string
		usable     bool
	}{
		{"fresh active", oat, true, KeyState{}, StateActive, "", true},
		{"fresh ready", oat, false, KeyState{}, StateReady, "", true},
		{"unknown expiry is valid", oat, false, KeyState{Expires: 0}, StateReady, "", true},
		{"expired with refresh", oat, true, KeyState{Expires: now.Add(-time.Minute).UnixMilli(), Refresh: "r"}, StateActive, "expired; refreshed on next use", true},
		{"expired without refresh", oat, true, KeyState{Expires: now.Add(-time.Minute).UnixMilli()}, StateNeedsReauth, "expired and has no refresh token; piauth login --add-to-pool", false},
		{"api key never expires", api, false, KeyState{Expires: now.Add(-time.Minute).UnixMilli()}, StateReady, "", true},
		{"cooling rate limit", oat, true, KeyState{CooldownUntil: now.Add(time.Minute), CooldownReason: ReasonRateLimit}, StateCooling, "rate-limited", false},
		{"cooling overloaded", oat, false, KeyState{CooldownUntil: now.Add(time.Minute), CooldownReason: ReasonOverloaded}, StateCooling, "overloaded", false},
		{"cooldown over", oat, false, KeyState{CooldownUntil: now.Add(-time.Second), CooldownReason: ReasonRateLimit}, StateReady, "", true},
		{"needs reauth beats cooling", oat, true, KeyState{NeedsReauth: true, CooldownUntil: now.Add(time.Hour)}, StateNeedsReauth, "refused and could not be refreshed; piauth login --add-to-pool", false},
		{"disabled", oat, true, KeyState{Disabled: true}, StateDisabled, "OAuth is not allowed for this account's organization (403); piauth login --add-to-pool or piauth key reset --disabled", false},
		{"revoked", api, true, KeyState{Revoked: true}, StateRevoked, "refused by the API (401); piauth key remove or piauth key prune deletes it", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := "sk-ant-oat01-" + "other-key-00000000000000000"
			p := &Pool{Keys: []string{other, tt.tok}, States: map[string]*KeyState{Fingerprint(tt.tok): &tt.st}}
			if tt.active {
				p.Active = 1
			}
			s := p.Status(1, now)
			assert.Equal(t, tt.want, s.State)
			assert.Equal(t, tt.wantReason, s.Reason)
			assert.Equal(t, tt.usable, s.State.Usable())
			if s.State == StateCooling {
				assert.Equal(t, tt.st.CooldownUntil, s.Until)
			}
		})
	}
}

func TestKeyStatusDescribe(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		s    KeyStatus
		want string
	}{
		{KeyStatus{State: StateActive}, "active"},
		{KeyStatus{State: StateReady, Reason: "expired; refreshed on next use"}, "ready (expired; refreshed on next use)"},
		{KeyStatus{State: StateCooling, Reason: "rate-limited", Until: now.Add(9*time.Minute + 55*time.Second)}, "cooling until 08:09:55 (in 9m55s), rate-limited"},
		{KeyStatus{State: StateNeedsReauth, Reason: "why"}, "needs-reauth: why"},
		{KeyStatus{State: StateDisabled, Reason: "why"}, "disabled: why"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.s.Describe(now))
		})
	}
}
