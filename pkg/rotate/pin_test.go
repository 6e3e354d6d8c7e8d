package rotate

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// pinnedChat sends one streaming request carrying pin and reads the answer.
func pinnedChat(t *testing.T, tr http.RoundTripper, baseURL string, pin *Pin) error {
	t.Helper()
	req, err := stream.NewRequest(WithPin(context.Background(), pin), baseURL, chatBody(t, true))
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	if err := stream.CheckResponse(resp); err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = stream.ReadMessage(resp.Body, nil, nil)
	return err
}

// A pinned conversation stays on its key while the key is usable, whatever
// the active key or SwitchAt say, and leaves the active key alone; a pinned
// key that is cooling gives way to the key any new request would take, and
// Used names it so that the conversation follows.
func TestPin(t *testing.T) {
	k1, k2, k3 := fakeTok("oat", "pa"), fakeTok("oat", "pb"), fakeTok("oat", "pc")
	fp := keystore.Fingerprint
	tests := []struct {
		name     string
		pin      string
		cooling  string // a key cooling down before the request
		switchAt float64
		wantKey  string // the key that answers
		wantUsed int    // Used's 1-based index
		active   int    // the pool's active key afterwards
	}{
		{"no pin: the active key", "", "", 0, k1, 1, 0},
		{"pinned to a ready key other than the active one", fp(k2), "", 0, k2, 2, 0},
		{"the pin beats switch-at", fp(k3), "", 90, k3, 3, 0},
		{"a cooling pinned key gives way to the active key", fp(k2), k2, 0, k1, 1, 0},
		{"a pinned key that is not in the pool is ignored", "0123456789ab", "", 0, k1, 1, 0},
		{"the pinned key limited mid-request rotates like any key", fp(k2), "", 0, k1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			scenario := `{"tokens": [{"contains": "pa", "unified": {"five_hour": 0.95}}]}`
			if tt.name == "the pinned key limited mid-request rotates like any key" {
				scenario = `{"tokens": [{"contains": "pb", "outcomes": [{"status": 429, "retry_after": 60}]}]}`
			}
			e, url := emu(t, scenario, clock.Now)
			store := openStore(t, t.TempDir(), clock.Now)
			states := map[string]keystore.KeyState{k1: {FiveHour: 0.95}}
			if tt.cooling != "" {
				states[tt.cooling] = keystore.KeyState{CooldownUntil: clock.Now().Add(time.Hour), CooldownReason: keystore.ReasonRateLimit}
			}
			seedPool(t, store, []string{k1, k2, k3}, states)
			tr := &Transport{Source: &Source{Store: store, Now: clock.Now, SwitchAt: tt.switchAt}, Service: stream.Builtin()}
			pin := &Pin{Key: tt.pin}
			require.NoError(t, pinnedChat(t, tr, url, pin))

			got := counts(e, k1, k2, k3)
			want := map[string]int64{k1: got[0], k2: got[1], k3: got[2]}
			assert.Equal(t, int64(1), want[tt.wantKey], "requests per key: %v", got)
			used, i, n := pin.Used()
			assert.Equal(t, fp(tt.wantKey), used)
			assert.Equal(t, []int{tt.wantUsed, 3}, []int{i, n})
			p, err := store.Pool()
			require.NoError(t, err)
			assert.Equal(t, tt.active, p.Active)
		})
	}
}
