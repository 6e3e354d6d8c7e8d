package proxy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// --wait-for-key (rotate.Transport Wait with MaxWait): when every key is
// cooling and the first frees within the bound, the proxy holds the request
// and answers it once a key frees; beyond the bound it answers 429 at once.
func TestWaitForKey(t *testing.T) {
	once := []emulator.Outcome{{Status: 429, RetryAfter: 20}, {Status: 200}}
	limitedOnce := &emulator.Scenario{Tokens: []emulator.TokenRule{
		{Contains: "once-1", Outcomes: once}, {Contains: "once-2", Outcomes: once},
	}}
	tests := []struct {
		name    string
		maxWait time.Duration
		status  int
		waited  time.Duration
	}{
		{"frees within the bound", 30 * time.Second, 200, 20 * time.Second},
		{"frees after the bound", 10 * time.Second, 429, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			start := c.Now()
			e := newPoolEnv(t, poolOptions{clock: c, scenario: limitedOnce, setup: func(rt *rotate.Transport) {
				rt.Wait, rt.MaxWait = true, tt.maxWait
			}}, fakeToken("once-1"), fakeToken("once-2"))
			resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
			require.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.waited, c.Now().Sub(start), "time slept for a key")
			if tt.status == http.StatusOK {
				msg, err := stream.ReadMessage(resp.Body, nil, nil)
				require.NoError(t, err)
				assert.Equal(t, "end_turn", msg.StopReason)
				assert.EqualValues(t, 3, e.emu.Stats().Requests["/v1/messages"], "both keys refused, then one answered")
				return
			}
			assert.Equal(t, "20", resp.Header.Get("Retry-After"))
			assert.EqualValues(t, 2, e.emu.Stats().Requests["/v1/messages"])
		})
	}
}
