package rotate

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

func TestSwitchKey(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	keys := []string{fakeTok("oat", "s1"), fakeTok("oat", "s2"), fakeTok("oat", "s3")}
	tests := []struct {
		name     string
		switchAt float64
		active   int
		util     []float64
		cooling  []bool
		want     int
	}{
		{"off", 0, 0, []float64{0.99, 0.1, 0.1}, nil, -1},
		{"below the mark: the conversation's key is kept", 90, 0, []float64{0.89, 0.1, 0.1}, nil, -1},
		{"at the mark: the key with the most headroom", 90, 0, []float64{0.90, 0.40, 0.20}, nil, 2},
		{"ties: the first after the active key", 90, 1, []float64{0.30, 0.95, 0.30}, nil, 2},
		{"no other key below the mark: kept", 90, 0, []float64{0.95, 0.92, 0.99}, nil, -1},
		{"a cooling key is not a candidate", 90, 0, []float64{0.95, 0.10, 0.50}, []bool{false, true, false}, 2},
		{"a cooling active key is rotation's business", 90, 0, []float64{0.95, 0.10, 0.50}, []bool{true, false, false}, -1},
		{"an unreported key has all its headroom", 80, 2, []float64{0.50, 0, 0.85}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &keystore.Pool{Keys: keys, Active: tt.active, States: map[string]*keystore.KeyState{}}
			for i, u := range tt.util {
				st := p.State(i)
				st.FiveHour = u
				if tt.cooling != nil && tt.cooling[i] {
					st.CooldownUntil, st.CooldownReason = now.Add(time.Hour), keystore.ReasonRateLimit
				}
			}
			assert.Equal(t, tt.want, switchKey(p, tt.switchAt, now))
		})
	}
}

// TestSwitchAtTransport sends requests through the Transport: the active key
// reports 95 % (its unified headers), so with SwitchAt 90 new requests move
// to the key with headroom, which stays active afterwards.
func TestSwitchAtTransport(t *testing.T) {
	hot, cool := fakeTok("oat", "hot"), fakeTok("oat", "cool")
	tests := []struct {
		name     string
		switchAt float64
		want     []int64 // requests per key (hot, cool) after two requests
		active   int
		log      string
	}{
		{"without switch-at the active key is kept", 0, []int64{2, 0}, 0, ""},
		{"switch at 90", 90, []int64{0, 2}, 1, "reports 95% of its 5-hour window used (switch at 90%); new requests use key 2/2 (20%)"},
		{"switch at 99: below the mark", 99, []int64{2, 0}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			e, url := emu(t, `{"tokens": [{"contains": "hot", "unified": {"five_hour": 0.95}},
				{"contains": "cool", "unified": {"five_hour": 0.2}}]}`, clock.Now)
			store := openStore(t, t.TempDir(), clock.Now)
			seedPool(t, store, []string{hot, cool}, map[string]keystore.KeyState{hot: {FiveHour: 0.95, Utilization: 0.95}, cool: {FiveHour: 0.2, Utilization: 0.2}})
			var log bytes.Buffer
			src := &Source{Store: store, Now: clock.Now, SwitchAt: tt.switchAt, SwitchLog: &log}
			tr := &Transport{Source: src, Service: stream.Builtin(), Log: &log}
			for range 2 {
				r := chat(t, tr, url)
				require.NoError(t, r.err)
			}
			assert.Equal(t, tt.want, counts(e, hot, cool))
			p, err := store.Pool()
			require.NoError(t, err)
			assert.Equal(t, tt.active, p.Active, "the move is recorded with the first answer")
			if tt.log == "" {
				assert.Empty(t, log.String())
			} else {
				assert.Equal(t, 1, bytes.Count(log.Bytes(), []byte(tt.log)), "said once: %s", log.String())
			}
		})
	}
}

// Switch-at watches the 5-hour window: a weekly window near its cap does not
// move a conversation off its key.
func TestSwitchAtWatchesFiveHours(t *testing.T) {
	now := time.Now()
	keys := []string{fakeTok("oat", "weekly"), fakeTok("oat", "other")}
	p := &keystore.Pool{Keys: keys, States: map[string]*keystore.KeyState{}}
	p.State(0).Utilization, p.State(0).FiveHour = 0.97, 0.30 // 7d at 97 %, 5h at 30 %
	assert.Equal(t, -1, switchKey(p, 90, now))
	p.State(0).FiveHour = 0.91
	assert.Equal(t, 1, switchKey(p, 90, now))
}

func TestParseUnifiedFiveHour(t *testing.T) {
	h := http.Header{}
	h.Set("anthropic-ratelimit-unified-status", "allowed")
	h.Set("anthropic-ratelimit-unified-5h-utilization", "0.42")
	h.Set("anthropic-ratelimit-unified-7d-utilization", "0.88")
	u, ok := ParseUnified(h)
	assert.True(t, ok)
	assert.Equal(t, 0.42, u.FiveHour)
	assert.Equal(t, 0.88, u.Utilization)
}
