package proxy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/redisstore"
	"github.com/piauth/piauth/pkg/stream"
)

// With a shared store (a real redis-server), a session pinned through one
// proxy stays on its key when it continues through another proxy whose own
// table has never seen it; without one, the other proxy starts it on its
// active key.
func TestSessionSharedAcrossProxies(t *testing.T) {
	r := testenv.RedisServer(t)
	open := func() *redisstore.Backend {
		b, err := redisstore.Open(context.Background(), redisstore.Options{URL: r.URL(), Passphrase: "a passphrase for the session test", ScryptN: 1 << 10})
		require.NoError(t, err)
		t.Cleanup(func() { b.Close() })
		return b
	}
	keys := []string{fakeToken("shared-1"), fakeToken("shared-2")}
	tests := []struct {
		name    string
		shared  bool
		wantKey int // the key proxy B sends session S with
	}{
		{"shared store: the session keeps its key", true, 1},
		{"no shared store: a new session on B's active key", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var oa, ob proxy.Options
			if tt.shared {
				oa.SharedSessions, ob.SharedSessions = open(), open()
			}
			a := newPoolEnv(t, poolOptions{proxy: oa}, keys...)
			b := newPoolEnv(t, poolOptions{proxy: ob}, keys...)
			send := func(e *poolEnv) {
				t.Helper()
				h := keyHeader()
				h.Set(proxy.SessionHeader, "S-"+tt.name)
				resp := post(t, e.proxy.URL, "/v1/messages", h, messagesBody(t, true, nil))
				require.Equal(t, 200, resp.StatusCode)
				_, err := stream.ReadMessage(resp.Body, nil, nil)
				require.NoError(t, err)
			}
			a.setActive(t, 1)
			send(a) // S starts on A's active key, key 2
			require.EqualValues(t, 1, a.used(1))
			send(b) // B's active key is key 1
			assert.EqualValues(t, 1, b.used(tt.wantKey), "B sent S with key %d", tt.wantKey+1)
			assert.EqualValues(t, 0, b.used(1-tt.wantKey))
		})
	}
}
