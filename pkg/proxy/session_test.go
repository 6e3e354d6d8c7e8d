package proxy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// A session stays on the key it started on while that key is usable, even
// when the pool's active key moves (its prompt cache lives there); new
// sessions start on the active key. When its key cools down the session
// moves, and then stays on its new key even after the old one is back.
func TestSessionStickinessAcrossRotation(t *testing.T) {
	ways := []struct {
		name  string
		short string // the log's short id of session A
		req   func(t *testing.T, e *poolEnv, session string) *http.Response
	}{
		{"X-Claude-Code-Session-Id", "A0e7c1d9", func(t *testing.T, e *poolEnv, session string) *http.Response {
			h := keyHeader()
			if session != "" {
				h.Set(proxy.SessionHeader, session+"0e7c1d9-4b2a-4c51-9f3e-1a2b3c4d5e6f")
			}
			return post(t, e.proxy.URL, "/v1/messages?beta=true", h, messagesBody(t, true, nil))
		}},
		{"metadata.user_id", "A0e7c1d9", func(t *testing.T, e *poolEnv, session string) *http.Response {
			return post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, func(m map[string]any) {
				if session != "" {
					m["metadata"] = map[string]any{"user_id": "user_5f1e_account_77aa_session_" + session + "0e7c1d9-4b2a"}
				}
			}))
		}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			c := newClock()
			sc := &emulator.Scenario{Tokens: []emulator.TokenRule{{Contains: "sess-2", Outcomes: []emulator.Outcome{
				{Status: 200}, {Status: 200}, {Status: 429, RetryAfter: 30}, {Status: 200},
			}}}}
			e := newPoolEnv(t, poolOptions{clock: c, scenario: sc}, fakeToken("sess-1"), fakeToken("sess-2"))
			send := func(session string, wantKey int) {
				t.Helper()
				before := []int64{e.used(0), e.used(1)}
				resp := way.req(t, e, session)
				require.Equal(t, 200, resp.StatusCode)
				_, err := stream.ReadMessage(resp.Body, nil, nil)
				require.NoError(t, err)
				assert.Equal(t, before[wantKey]+1, e.used(wantKey), "session %q answered by key %d", session, wantKey+1)
			}

			e.setActive(t, 1)
			send("A", 1) // new session: the active key, key 2
			e.setActive(t, 0)
			send("A", 1) // A stays on key 2 while key 1 is active
			send("B", 0) // a new session starts on the active key
			send("", 0)  // so does a request without a session
			require.EqualValues(t, 2, e.used(1))

			send("A", 0) // key 2 answers 429: A moves to key 1
			assert.EqualValues(t, 3, e.used(1), "key 2 was tried first")
			c.Advance(31 * time.Second) // key 2 is usable again, and active
			e.setActive(t, 1)
			send("A", 0) // A stays on its new key
			send("C", 1) // a new session goes to the active key
			send("B", 0) // B never moved

			e.proxy.Close()
			assert.Contains(t, e.log.String(), " session="+way.short+" ")
			assert.Equal(t, 3, e.px.Status().Sessions, "A, B and C are pinned")
		})
	}
}

// The session table is bounded: past MaxSessions the least recently used
// session is forgotten, and idle sessions expire.
func TestSessionTableBounded(t *testing.T) {
	c := newClock()
	e := newPoolEnv(t, poolOptions{clock: c, proxy: proxy.Options{MaxSessions: 3, SessionIdle: time.Minute}},
		fakeToken("bound-1"), fakeToken("bound-2"))
	for _, s := range []string{"s1", "s2", "s3", "s4", "s5"} {
		h := keyHeader()
		h.Set(proxy.SessionHeader, s)
		resp := post(t, e.proxy.URL, "/v1/messages", h, messagesBody(t, false, nil))
		require.Equal(t, 200, resp.StatusCode)
	}
	assert.Equal(t, 3, e.px.Status().Sessions)
	c.Advance(2 * time.Minute)
	assert.Equal(t, 0, e.px.Status().Sessions, "idle sessions expired")
}
