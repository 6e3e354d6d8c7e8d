package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// rotatingEnv is a proxy whose client is pkg/rotate's transport over a pool
// of keys in a temporary agent dir.
func rotatingEnv(t *testing.T, now func() time.Time, keys ...string) (*env, *keystore.Store) {
	t.Helper()
	store, err := keystore.Open(keystore.Options{Dir: t.TempDir(), Mode: keystore.ModeOff, Now: now})
	require.NoError(t, err)
	_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for _, k := range keys {
			p.Add(k, keystore.KeyState{})
		}
		return nil
	})
	require.NoError(t, err)
	emu := emulator.New(emulator.Options{Now: now})
	up, seen := startUpstream(t, emu)
	rt := &rotate.Transport{Base: up.Client().Transport, Source: &rotate.Source{Store: store, Now: now}}
	log := &testenv.Buffer{}
	px := httptest.NewServer(proxy.New(proxy.Options{
		Client: &http.Client{Transport: rt}, Upstream: up.URL, ClientKey: clientKey(),
		Log: log, Now: now, KeyLabel: rt.KeyLabel,
	}))
	t.Cleanup(px.Close)
	return &env{emu: emu, upstream: up, proxy: px, log: log, seen: seen}, store
}

func TestRotationFirstKeyRateLimited(t *testing.T) {
	limited, good := fakeToken("ratelimited-1"), fakeToken("good-2")
	e, store := rotatingEnv(t, time.Now, limited, good)

	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)
	msg, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err, "one clean stream")
	assert.Equal(t, "end_turn", msg.StopReason)

	stats := e.emu.Stats()
	assert.Equal(t, int64(2), stats.Requests["/v1/messages"])
	assert.Equal(t, int64(1), stats.Tokens[emulator.Fingerprint(limited)])
	assert.Equal(t, int64(1), stats.Tokens[emulator.Fingerprint(good)])

	p, err := store.Pool()
	require.NoError(t, err)
	assert.Equal(t, 1, p.Active)
	assert.True(t, p.State(0).CooldownUntil.After(time.Now()))

	e.proxy.Close()
	assert.Contains(t, e.log.String(), "key="+keystore.Mask(good))
	assert.NotContains(t, e.log.String(), good)
}

// 50 streams at once through a pool whose first key is rate-limited: all
// complete, and the pool ends with one cooldown on the first key.
func TestRotationConcurrentStreams(t *testing.T) {
	const n = 50
	limited, good := fakeToken("ratelimited-a"), fakeToken("good-b")
	e, store := rotatingEnv(t, time.Now, limited, good)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}

	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, e.proxy.URL+"/v1/messages", bytes.NewReader(messagesBody(t, true, nil)))
			req.Header = keyHeader()
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if errs[i] = stream.CheckResponse(resp); errs[i] == nil {
				_, errs[i] = stream.ReadMessage(resp.Body, nil, nil)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "stream %d", i)
	}
	stats := e.emu.Stats()
	assert.Equal(t, int64(n), stats.Tokens[emulator.Fingerprint(good)])
	assert.LessOrEqual(t, stats.Tokens[emulator.Fingerprint(limited)], int64(n))

	p, err := store.Pool()
	require.NoError(t, err)
	require.Len(t, p.Keys, 2)
	assert.Equal(t, 1, p.Active)
	assert.True(t, p.State(0).CooldownUntil.After(time.Now()))
	assert.True(t, p.State(1).CooldownUntil.IsZero(), "the good key never cooled down")
}

// Every key rate-limited: the client gets Anthropic's 429 with retry-after
// = seconds until the first key frees.
func TestRotationAllKeysLimited(t *testing.T) {
	now := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	e, _ := rotatingEnv(t, clock, fakeToken("ratelimited-x"), fakeToken("ratelimited-y"))

	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, strconv.Itoa(60), resp.Header.Get("Retry-After"), "the emulator asked 600 s; DefaultMaxRetryAfter caps it")
	apiErr := decodeError(t, resp)
	assert.Equal(t, "rate_limit_error", apiErr.Error.Type)
	assert.Contains(t, apiErr.Error.Message, "rate-limited")
}

func TestRotationEmptyPool(t *testing.T) {
	e, _ := rotatingEnv(t, time.Now)
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	require.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, "authentication_error", decodeError(t, resp).Error.Type)
}
