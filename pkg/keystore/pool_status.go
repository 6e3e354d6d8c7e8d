package keystore

import (
	"time"

	"github.com/piauth/piauth/internal/when"
)

// State is the one word for what a pooled key is at a moment. `key list`,
// `status`, the rotation's choice and its log lines all take it from
// Pool.Status, so they never disagree.
type State string

// Key states.
const (
	// StateActive is the key requests use now (the pool's active key while
	// it is usable).
	StateActive State = "active"
	// StateReady is a usable key that is not the active one.
	StateReady State = "ready"
	// StateCooling is a key that was rate-limited or overloaded; it is
	// skipped until its cooldown ends.
	StateCooling State = "cooling"
	// StateNeedsReauth is a key that only a new login can bring back: it was
	// refused and could not be refreshed, or it expired with no refresh token.
	StateNeedsReauth State = "needs-reauth"
	// StateDisabled is an account the service refused as a whole (403,
	// OAuth not allowed for its organization); kept, skipped, brought back
	// by a new login of the account or `piauth key reset --disabled`.
	StateDisabled State = "disabled"
	// StateRevoked is an API key the service refused (401); kept in the
	// file and the keyring, skipped, deleted only by `key remove`/`key prune`.
	StateRevoked State = "revoked"
)

// Usable reports whether a request may be sent with a key in state s.
func (s State) Usable() bool { return s == StateActive || s == StateReady }

// Cooldown reasons stored in KeyState.CooldownReason.
const (
	ReasonRateLimit  = "rate_limit"
	ReasonOverloaded = "overloaded"
)

// KeyStatus is a key's state at one moment with a one-line reason.
type KeyStatus struct {
	State State
	// Reason says why, for humans: "rate-limited", "overloaded",
	// "refused and could not be refreshed", "expired; refreshed on next
	// use", or "" when there is nothing to add.
	Reason string
	// Until is the end of a cooldown (StateCooling); zero otherwise.
	Until time.Time
}

// Status decides the state of key i at now. It is the only place that does.
func (p *Pool) Status(i int, now time.Time) KeyStatus {
	tok := p.Keys[i]
	st := p.States[Fingerprint(tok)]
	if st == nil {
		st = &KeyState{}
	}
	oauth := KindOf(tok) == KindOAuth
	expired := oauth && ExpiredAt(st.Expires, now)
	switch {
	case st.Revoked:
		return KeyStatus{State: StateRevoked, Reason: "refused by the API (401); piauth key remove or piauth key prune deletes it"}
	case st.Disabled:
		return KeyStatus{State: StateDisabled, Reason: "OAuth is not allowed for this account's organization (403); piauth login --add-to-pool or piauth key reset --disabled"}
	case st.NeedsReauth:
		return KeyStatus{State: StateNeedsReauth, Reason: "refused and could not be refreshed; piauth login --add-to-pool"}
	case expired && st.Refresh == "":
		return KeyStatus{State: StateNeedsReauth, Reason: "expired and has no refresh token; piauth login --add-to-pool"}
	case st.CooldownUntil.After(now):
		reason := "rate-limited"
		if st.CooldownReason == ReasonOverloaded {
			reason = "overloaded"
		}
		return KeyStatus{State: StateCooling, Reason: reason, Until: st.CooldownUntil}
	}
	s := KeyStatus{State: StateReady}
	if i == p.ActiveIndex() {
		s.State = StateActive
	}
	if expired {
		s.Reason = "expired; refreshed on next use"
	}
	return s
}

// ActiveIndex is Active clamped to the pool (0 for an empty pool).
func (p *Pool) ActiveIndex() int {
	if p.Active < 0 || p.Active >= len(p.Keys) {
		return 0
	}
	return p.Active
}

// Describe renders the status for a table or a log line, the same way
// everywhere: "active", "ready", "cooling until 08:17:20 (in 9m55s),
// rate-limited", "needs-reauth: refused and could not be refreshed; …".
func (s KeyStatus) Describe(now time.Time) string {
	switch s.State {
	case StateCooling:
		return "cooling until " + when.Until(s.Until, now) + ", " + s.Reason
	case StateNeedsReauth, StateDisabled, StateRevoked:
		return string(s.State) + ": " + s.Reason
	}
	if s.Reason != "" {
		return string(s.State) + " (" + s.Reason + ")"
	}
	return string(s.State)
}
