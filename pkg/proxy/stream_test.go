package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// The client decodes through the proxy exactly the events it would decode
// talking to the emulator directly (ids are deterministic here).
func TestStreamPassesThroughUnchanged(t *testing.T) {
	sc := &emulator.Scenario{Reply: emulator.Reply{
		Thinking: "Let me think.", Text: "Hello \"proxy\" <world> ", Repeat: 3, Deltas: 7,
	}}
	e := newEnv(t, emulator.Options{Scenario: sc, Rand: zeroRand{}}, fakeToken("passthrough"), proxy.Options{ClientKey: clientKey()})
	body := messagesBody(t, true, func(m map[string]any) {
		m["max_tokens"] = 4096
		m["thinking"] = map[string]any{"type": "enabled", "budget_tokens": 1024}
	})

	req, err := stream.NewRequest(context.Background(), e.upstream.URL, body)
	require.NoError(t, err)
	direct, err := tokenClient(e.upstream, fakeToken("passthrough")).Do(req)
	require.NoError(t, err)
	defer direct.Body.Close()
	require.Equal(t, 200, direct.StatusCode)
	want := readEvents(t, direct.Body)

	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), body)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.NotEmpty(t, resp.Header.Get("Request-Id"))
	assert.Equal(t, "allowed", resp.Header.Get("Anthropic-Ratelimit-Unified-Status"))
	got := readEvents(t, resp.Body)

	require.Greater(t, len(want), 15)
	assert.Equal(t, want, got)
}

// The client sees the first event while the emulator is still holding the
// rest of the stream: the proxy flushes per event, it does not buffer.
func TestStreamFlushesEachEvent(t *testing.T) {
	g := newGate(1) // message_start passes, everything after waits
	e := newEnv(t, emulator.Options{Scenario: slowReply(), Sleep: g.Sleep}, fakeToken("flush"), proxy.Options{ClientKey: clientKey()})
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)

	dec := stream.NewDecoder(resp.Body)
	require.True(t, dec.Next(), "first event before the emulator finished: %v", dec.Err())
	assert.Equal(t, "message_start", dec.Event().Name)

	close(g.open)
	var acc stream.Accumulator
	_, err := acc.Add(dec.Event())
	require.NoError(t, err)
	for dec.Next() {
		_, err := acc.Add(dec.Event())
		require.NoError(t, err)
	}
	require.NoError(t, dec.Err())
	assert.True(t, acc.Done())
}

// A client that goes away cancels the upstream request.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	g := newGate(1)
	e := newEnv(t, emulator.Options{Scenario: slowReply(), Sleep: g.Sleep}, fakeToken("disconnect"), proxy.Options{ClientKey: clientKey()})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.proxy.URL+"/v1/messages", bytes.NewReader(messagesBody(t, true, nil)))
	require.NoError(t, err)
	req.Header = keyHeader()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	dec := stream.NewDecoder(resp.Body)
	require.True(t, dec.Next())

	cancel()
	select { // the gate never opened: only a cancelled upstream request ends the emulator's stream
	case <-e.seen.finished:
	case <-time.After(time.Minute): // a hang bound, not a speed claim
		t.Fatal("the upstream stream was not cancelled after the client went away")
	}
	e.proxy.Close()
	assert.Contains(t, e.log.String(), "error=client_closed")
}

func TestConcurrentStreams(t *testing.T) {
	const n = 50
	sc := &emulator.Scenario{Reply: emulator.Reply{Text: "concurrent ", Repeat: 20, Deltas: 10}}
	e := newEnv(t, emulator.Options{Scenario: sc}, fakeToken("concurrent"), proxy.Options{ClientKey: clientKey()})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}

	var wg sync.WaitGroup
	errs := make([]error, n)
	msgs := make([]*stream.Message, n)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, e.proxy.URL+"/v1/messages", bytes.NewReader(messagesBody(t, true, nil)))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header = keyHeader()
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if err := stream.CheckResponse(resp); err != nil {
				errs[i] = err
				return
			}
			msgs[i], errs[i] = stream.ReadMessage(resp.Body, nil, nil)
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "stream %d", i)
		assert.Equal(t, "end_turn", msgs[i].StopReason)
		require.Len(t, msgs[i].Content, 1)
		assert.Len(t, msgs[i].Content[0].Text, len("concurrent ")*20)
	}
	assert.Equal(t, int64(n), e.emu.Stats().Requests["/v1/messages"])
}
