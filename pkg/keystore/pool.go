package keystore

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// poolVersion is the version of piauth's state under "piauth".
const poolVersion = 1

// KeyState is piauth's state for one pooled key, stored by fingerprint.
// Unknown fields are preserved on rewrite.
type KeyState struct {
	Label          string
	Refresh        string    // refresh token of this pooled OAuth account ("" = cannot refresh)
	Expires        int64     // epoch ms, 0 = unknown
	Account        string    // email when known
	CooldownUntil  time.Time // zero = ready
	CooldownReason string    // "rate_limit", "overloaded"
	NeedsReauth    bool
	// Disabled is set when the service refused the account itself (403
	// "OAuth authentication is currently not allowed for this
	// organization"): the key is kept but skipped until a new login of the
	// account or `piauth key reset --disabled`.
	Disabled bool
	// Revoked is set when an API key was refused (401): the seed deletes
	// such a key; piauth keeps it (file and keyring) but skips it, so one
	// refusal never destroys the only copy of a secret. `key remove` or
	// `key prune` deletes it.
	Revoked       bool
	UnifiedStatus string  // last anthropic-ratelimit-unified-status seen
	Utilization   float64 // highest window utilisation last seen
	FiveHour      float64 // the 5-hour window's utilisation last seen (switch-at watches it)
	Replaces      string  // fingerprint of the key this one replaced in a refresh (see Follow)

	extra map[string]json.RawMessage
}

// Pool is key-rotation.json: the seed's "keys" list plus piauth's state under
// "piauth". Unknown top-level and "piauth" fields are preserved on rewrite.
type Pool struct {
	Keys    []string             // exactly the seed's "keys" list, in order
	Active  int                  // 0-based index of the active key
	Rotated bool                 // the seed's "(rotated)" mark
	States  map[string]*KeyState // by Fingerprint(key); missing = zero state

	extra       map[string]json.RawMessage // unknown top-level fields
	piauthExtra map[string]json.RawMessage // unknown fields under "piauth"
}

// State returns the state of key i, creating a zero state when missing.
func (p *Pool) State(i int) *KeyState {
	if p.States == nil {
		p.States = map[string]*KeyState{}
	}
	fp := Fingerprint(p.Keys[i])
	st := p.States[fp]
	if st == nil {
		st = &KeyState{}
		p.States[fp] = st
	}
	return st
}

// Find returns the index of a key given as a full token or as a fingerprint
// (or an unambiguous fingerprint prefix of at least 6 characters); -1 if absent.
func (p *Pool) Find(tokOrFingerprint string) int {
	if i := slices.Index(p.Keys, tokOrFingerprint); i >= 0 {
		return i
	}
	s := strings.ToLower(tokOrFingerprint)
	if len(s) < 6 || len(s) > 12 {
		return -1
	}
	found := -1
	for i, k := range p.Keys {
		if strings.HasPrefix(Fingerprint(k), s) {
			if found >= 0 && p.Keys[found] != k {
				return -1 // ambiguous
			}
			if found < 0 {
				found = i
			}
		}
	}
	return found
}

// Add appends tok with state st unless it is already pooled; it returns the
// key's index and whether it was added.
func (p *Pool) Add(tok string, st KeyState) (index int, added bool) {
	if i := slices.Index(p.Keys, tok); i >= 0 {
		return i, false
	}
	p.Keys = append(p.Keys, tok)
	if p.States == nil {
		p.States = map[string]*KeyState{}
	}
	p.States[Fingerprint(tok)] = &st
	return len(p.Keys) - 1, true
}

// Remove drops key i and its state. Active keeps pointing at the same key when
// it survives, else at the key that took i's place (wrapping to the first).
func (p *Pool) Remove(i int) {
	if i < 0 || i >= len(p.Keys) {
		return
	}
	tok := p.Keys[i]
	p.Keys = slices.Delete(p.Keys, i, i+1)
	if !slices.Contains(p.Keys, tok) {
		delete(p.States, Fingerprint(tok))
	}
	if i < p.Active {
		p.Active--
	}
	p.clamp()
}

// Replace swaps key i for newTok (after a refresh), moving its state to the new
// fingerprint.
func (p *Pool) Replace(i int, newTok string) {
	if i < 0 || i >= len(p.Keys) {
		return
	}
	st := *p.State(i)
	oldTok := p.Keys[i]
	p.Keys[i] = newTok
	if !slices.Contains(p.Keys, oldTok) {
		delete(p.States, Fingerprint(oldTok))
	}
	st.Replaces = Fingerprint(oldTok)
	p.States[Fingerprint(newTok)] = &st
}

func (p *Pool) clamp() {
	if p.Active < 0 || p.Active >= len(p.Keys) {
		p.Active = 0
	}
}

type stateJSON struct {
	Label          string  `json:"label,omitempty"`
	Refresh        string  `json:"refresh,omitempty"`
	Expires        int64   `json:"expires,omitempty"`
	Account        string  `json:"account,omitempty"`
	CooldownUntil  string  `json:"cooldown_until,omitempty"`
	CooldownReason string  `json:"cooldown_reason,omitempty"`
	NeedsReauth    bool    `json:"needs_reauth,omitempty"`
	Disabled       bool    `json:"disabled,omitempty"`
	Revoked        bool    `json:"revoked,omitempty"`
	UnifiedStatus  string  `json:"unified_status,omitempty"`
	Utilization    float64 `json:"utilization,omitempty"`
	FiveHour       float64 `json:"utilization_5h,omitempty"`
	Replaces       string  `json:"replaces,omitempty"`
}

// stateFields maps each known state field to a pointer into s and the type
// description used in errors.
func stateFields(s *stateJSON) map[string]struct {
	dst  any
	want string
} {
	type f = struct {
		dst  any
		want string
	}
	return map[string]f{
		"label": {&s.Label, "a string"}, "refresh": {&s.Refresh, "a string"},
		"expires": {&s.Expires, "an integer (epoch milliseconds)"}, "account": {&s.Account, "a string"},
		"cooldown_until": {&s.CooldownUntil, "an RFC 3339 time string"}, "cooldown_reason": {&s.CooldownReason, "a string"},
		"needs_reauth": {&s.NeedsReauth, "a boolean"}, "unified_status": {&s.UnifiedStatus, "a string"},
		"disabled": {&s.Disabled, "a boolean"}, "revoked": {&s.Revoked, "a boolean"},
		"utilization": {&s.Utilization, "a number"}, "replaces": {&s.Replaces, "a string"},
		"utilization_5h": {&s.FiveHour, "a number"},
	}
}

// parsePool parses key-rotation.json. Keys without state get zero state (lazily,
// via State); states of keys not in "keys" are kept in memory but dropped on write.
func parsePool(path string, data []byte) (*Pool, error) {
	d, err := parseDoc(path, data)
	if err != nil {
		return nil, err
	}
	top, err := d.object("", data)
	if err != nil {
		return nil, err
	}
	p := &Pool{States: map[string]*KeyState{}, extra: map[string]json.RawMessage{}, piauthExtra: map[string]json.RawMessage{}}
	for k, v := range top {
		switch k {
		case "keys":
			var elems []json.RawMessage
			if err := d.decode("/keys", v, &elems, "an array of strings"); err != nil {
				return nil, err
			}
			p.Keys = make([]string, len(elems))
			for i, e := range elems {
				ptr := "/keys/" + strconv.Itoa(i)
				if err := d.decode(ptr, e, &p.Keys[i], "a string"); err != nil || string(e) == "null" {
					return nil, d.at(ptr, fmt.Sprintf("%q: expected a string", displayPtr(ptr)))
				}
			}
		case "piauth":
			if err := p.parsePiauth(d, v); err != nil {
				return nil, err
			}
		default:
			p.extra[k] = v
		}
	}
	p.clamp()
	return p, nil
}

func (p *Pool) parsePiauth(d *doc, raw json.RawMessage) error {
	m, err := d.object("/piauth", raw)
	if err != nil {
		return err
	}
	for k, v := range m {
		ptr := "/piauth/" + escapePtr(k)
		switch k {
		case "version":
			var ver int
			if err := d.decode(ptr, v, &ver, "an integer"); err != nil {
				return err
			}
			if ver > poolVersion {
				return d.at(ptr, fmt.Sprintf("state version %d is newer than this piauth understands (%d)", ver, poolVersion))
			}
		case "active":
			if err := d.decode(ptr, v, &p.Active, "an integer"); err != nil {
				return err
			}
		case "rotated":
			if err := d.decode(ptr, v, &p.Rotated, "a boolean"); err != nil {
				return err
			}
		case "states":
			states, err := d.object(ptr, v)
			if err != nil {
				return err
			}
			for fp, sv := range states {
				st, err := parseState(d, ptr+"/"+escapePtr(fp), sv)
				if err != nil {
					return err
				}
				p.States[fp] = st
			}
		default:
			p.piauthExtra[k] = v
		}
	}
	return nil
}

func parseState(d *doc, ptr string, raw json.RawMessage) (*KeyState, error) {
	m, err := d.object(ptr, raw)
	if err != nil {
		return nil, err
	}
	var sj stateJSON
	fields := stateFields(&sj)
	st := &KeyState{}
	for k, v := range m {
		f, known := fields[k]
		if !known {
			if st.extra == nil {
				st.extra = map[string]json.RawMessage{}
			}
			st.extra[k] = v
			continue
		}
		if string(v) == "null" {
			continue
		}
		if err := d.decode(ptr+"/"+escapePtr(k), v, f.dst, f.want); err != nil {
			return nil, err
		}
	}
	if sj.CooldownUntil != "" {
		t, err := time.Parse(time.RFC3339Nano, sj.CooldownUntil)
		if err != nil {
			return nil, d.at(ptr+"/cooldown_until", fmt.Sprintf("%q: expected an RFC 3339 time string", displayPtr(ptr+"/cooldown_until")))
		}
		st.CooldownUntil = t
	}
	st.Label, st.Refresh, st.Expires, st.Account = sj.Label, sj.Refresh, sj.Expires, sj.Account
	st.CooldownReason, st.NeedsReauth, st.UnifiedStatus, st.Utilization = sj.CooldownReason, sj.NeedsReauth, sj.UnifiedStatus, sj.Utilization
	st.FiveHour = sj.FiveHour
	st.Replaces, st.Disabled, st.Revoked = sj.Replaces, sj.Disabled, sj.Revoked
	return st, nil
}

func (st *KeyState) marshal() (json.RawMessage, error) {
	sj := stateJSON{Label: st.Label, Refresh: st.Refresh, Expires: st.Expires, Account: st.Account,
		CooldownReason: st.CooldownReason, NeedsReauth: st.NeedsReauth, UnifiedStatus: st.UnifiedStatus, Utilization: st.Utilization, FiveHour: st.FiveHour, Replaces: st.Replaces,
		Disabled: st.Disabled, Revoked: st.Revoked}
	if !st.CooldownUntil.IsZero() {
		sj.CooldownUntil = st.CooldownUntil.UTC().Format(time.RFC3339Nano)
	}
	known, err := json.Marshal(sj)
	if err != nil {
		return nil, err
	}
	if len(st.extra) == 0 {
		return known, nil
	}
	m := map[string]json.RawMessage{}
	for k, v := range st.extra {
		m[k] = v
	}
	var km map[string]json.RawMessage
	if err := json.Unmarshal(known, &km); err != nil {
		return nil, err
	}
	for k := range stateFields(&sj) {
		delete(m, k) // a known field cleared to its zero value is dropped
	}
	for k, v := range km {
		m[k] = v
	}
	return json.Marshal(m)
}

// marshal renders the pool as key-rotation.json: "keys" first-class, piauth's
// state under "piauth" (only for keys still in "keys"), unknown fields kept.
func (p *Pool) marshal() ([]byte, error) {
	p.clamp()
	top := map[string]json.RawMessage{}
	for k, v := range p.extra {
		top[k] = v
	}
	keys := p.Keys
	if keys == nil {
		keys = []string{}
	}
	kb, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	top["keys"] = kb
	pa := map[string]json.RawMessage{}
	for k, v := range p.piauthExtra {
		pa[k] = v
	}
	pa["version"], _ = json.Marshal(poolVersion)
	pa["active"], _ = json.Marshal(p.Active)
	pa["rotated"], _ = json.Marshal(p.Rotated)
	states := map[string]json.RawMessage{}
	for _, k := range p.Keys {
		fp := Fingerprint(k)
		if st := p.States[fp]; st != nil {
			if states[fp], err = st.marshal(); err != nil {
				return nil, err
			}
		}
	}
	pa["states"], _ = json.Marshal(states)
	if top["piauth"], err = json.Marshal(pa); err != nil {
		return nil, err
	}
	return marshalObject(top)
}

// clone deep-copies the pool (used to diff before/after an update).
func (p *Pool) clone() *Pool {
	c := *p
	c.Keys = slices.Clone(p.Keys)
	c.States = make(map[string]*KeyState, len(p.States))
	for k, v := range p.States {
		if v != nil {
			s := *v
			c.States[k] = &s
		}
	}
	return &c
}
