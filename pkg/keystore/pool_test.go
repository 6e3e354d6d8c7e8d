package keystore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolOperations(t *testing.T) {
	a, b, c := fakeTok("oat01", 1), fakeTok("oat01", 2), fakeTok("api03", 3)
	newPool := func() *Pool {
		p := &Pool{}
		p.Add(a, KeyState{Label: "a"})
		p.Add(b, KeyState{Label: "b"})
		p.Add(c, KeyState{Label: "c"})
		return p
	}
	tests := []struct {
		name       string
		active     int
		op         func(p *Pool)
		wantKeys   []string
		wantActive int
	}{
		{"remove before active", 2, func(p *Pool) { p.Remove(0) }, []string{b, c}, 1},
		{"remove active middle", 1, func(p *Pool) { p.Remove(1) }, []string{a, c}, 1},
		{"remove active last wraps", 2, func(p *Pool) { p.Remove(2) }, []string{a, b}, 0},
		{"remove after active", 0, func(p *Pool) { p.Remove(2) }, []string{a, b}, 0},
		{"remove out of range", 1, func(p *Pool) { p.Remove(7) }, []string{a, b, c}, 1},
		{"replace", 1, func(p *Pool) { p.Replace(1, fakeTok("oat01", 9)) }, []string{a, fakeTok("oat01", 9), c}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool()
			p.Active = tt.active
			tt.op(p)
			assert.Equal(t, tt.wantKeys, p.Keys)
			assert.Equal(t, tt.wantActive, p.Active)
			for i := range p.Keys {
				assert.NotEmpty(t, p.State(i).Label, "state follows its key")
			}
			assert.Len(t, p.States, len(p.Keys), "no orphan states")
		})
	}
}

func TestPoolFindAndAdd(t *testing.T) {
	a, b := fakeTok("oat01", 1), fakeTok("oat01", 2)
	p := &Pool{}
	i, added := p.Add(a, KeyState{Label: "work"})
	assert.Equal(t, 0, i)
	assert.True(t, added)
	i, added = p.Add(a, KeyState{Label: "other"})
	assert.Equal(t, 0, i)
	assert.False(t, added)
	assert.Equal(t, "work", p.State(0).Label, "re-adding changes nothing")
	p.Add(b, KeyState{})

	tests := []struct {
		name, q string
		want    int
	}{
		{"token", b, 1},
		{"fingerprint", Fingerprint(a), 0},
		{"prefix 6", Fingerprint(b)[:6], 1},
		{"upper case prefix", "X" + Fingerprint(b)[:5], -1},
		{"prefix too short", Fingerprint(a)[:5], -1},
		{"absent", "ffffffffffff", -1},
		{"empty", "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, p.Find(tt.q))
		})
	}
}

func TestPoolParseMarshalPreservesUnknown(t *testing.T) {
	a, b := fakeTok("oat01", 1), fakeTok("oat01", 2)
	gone := fakeTok("oat01", 3)
	in := `{"keys": ["` + a + `", "` + b + `"], "note": {"x": [1, 2]},
	"piauth": {"version": 1, "active": 5, "rotated": true, "future": "yes",
	  "states": {"` + Fingerprint(a) + `": {"label": "work", "expires": 1767225600000, "cooldown_until": "2026-11-28T18:00:00Z", "extra_field": 42},
	             "` + Fingerprint(gone) + `": {"label": "hand-removed"}}}}`
	p, err := parsePool("k.json", []byte(in))
	require.NoError(t, err)
	assert.Equal(t, []string{a, b}, p.Keys)
	assert.Equal(t, 0, p.Active, "out-of-range active is clamped")
	assert.True(t, p.Rotated)
	st := p.State(0)
	assert.Equal(t, "work", st.Label)
	assert.Equal(t, time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC), st.CooldownUntil.UTC())
	assert.Equal(t, KeyState{}, *p.State(1), "key without state gets zero state")

	st.NeedsReauth = true
	out, err := p.marshal()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m))
	assert.Equal(t, map[string]any{"x": []any{1.0, 2.0}}, m["note"])
	pa := m["piauth"].(map[string]any)
	assert.Equal(t, "yes", pa["future"])
	states := pa["states"].(map[string]any)
	assert.NotContains(t, states, Fingerprint(gone), "state of a hand-removed key is dropped")
	sa := states[Fingerprint(a)].(map[string]any)
	assert.Equal(t, 42.0, sa["extra_field"])
	assert.Equal(t, true, sa["needs_reauth"])
	assert.Equal(t, "2026-11-28T18:00:00Z", sa["cooldown_until"])

	// What the seed reads is unchanged.
	var seed struct{ Keys []string }
	require.NoError(t, json.Unmarshal(out, &seed))
	assert.Equal(t, []string{a, b}, seed.Keys)

	again, err := parsePool("k.json", out)
	require.NoError(t, err)
	out2, err := again.marshal()
	require.NoError(t, err)
	assert.Equal(t, string(out), string(out2), "marshal is stable")
}

func TestPoolMerge(t *testing.T) {
	a, b, c, a2 := fakeTok("oat01", 1), fakeTok("oat01", 2), fakeTok("oat01", 3), fakeTok("oat01", 4)
	dst := &Pool{}
	dst.Add(a, KeyState{Label: "a", Refresh: "r-a-old", Expires: 100, CooldownReason: ReasonRateLimit})
	dst.Add(b, KeyState{Label: "b"})
	src := &Pool{}
	src.Add(a, KeyState{Label: "a-local", Refresh: "r-a-new", Expires: 200})
	src.Add(c, KeyState{Label: "c"})
	added, updated := dst.Merge(src)
	assert.Equal(t, 1, added)
	assert.Equal(t, 1, updated)
	assert.Equal(t, []string{a, b, c}, dst.Keys)
	assert.Equal(t, "a", dst.State(0).Label, "the store's state wins")
	assert.Equal(t, "r-a-new", dst.State(0).Refresh, "the later refresh wins")
	assert.Equal(t, ReasonRateLimit, dst.State(0).CooldownReason)

	// A copy the store has since refreshed is skipped; a copy refreshed
	// here replaces the store's.
	stale := &Pool{}
	stale.Add(a, KeyState{})
	dst.Replace(0, a2)
	added, updated = dst.Merge(stale)
	assert.Zero(t, added+updated)
	assert.Equal(t, []string{a2, b, c}, dst.Keys)
	fresh := &Pool{}
	fresh.Add(fakeTok("oat01", 5), KeyState{Replaces: Fingerprint(b), Label: "b2"})
	_, updated = dst.Merge(fresh)
	assert.Equal(t, 1, updated)
	assert.Equal(t, []string{a2, fakeTok("oat01", 5), c}, dst.Keys)
	assert.Len(t, dst.States, 3)

	// Into an empty pool: a whole copy.
	empty := &Pool{}
	src.Active = 1
	added, _ = empty.Merge(src)
	assert.Equal(t, 2, added)
	assert.Equal(t, 1, empty.Active)
}
