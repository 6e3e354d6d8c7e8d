package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/rotate"
	"github.com/piauth/piauth/pkg/stream"
)

// machine is one piauth process on its own agent dir, its pool in r.
type machine struct {
	store *keystore.Store
	tr    *rotate.Transport
	log   *testenv.Buffer
}

func newMachine(t *testing.T, r *testenv.Redis, backoff []time.Duration) *machine {
	t.Helper()
	log := &testenv.Buffer{}
	b, err := Open(context.Background(), Options{URL: r.URL(), Passphrase: testPass, ScryptN: 1 << 10, Warn: log, Backoff: backoff})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s, err := keystore.Open(keystore.Options{Dir: t.TempDir(), Mode: keystore.ModeOff, Backend: b})
	require.NoError(t, err)
	return &machine{store: s, log: log, tr: &rotate.Transport{Source: &rotate.Source{Store: s}, Log: log}}
}

func startEmulator(t *testing.T, scenario string, sleep func(context.Context, time.Duration) error) (*emulator.Emulator, string) {
	t.Helper()
	opts := emulator.Options{Sleep: sleep}
	if scenario != "" {
		sc, err := emulator.ParseScenario([]byte(scenario))
		require.NoError(t, err)
		opts.Scenario = sc
	}
	e := emulator.New(opts)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv.URL
}

// send sends one streaming Messages request and reads it to the end.
func send(t *testing.T, m *machine, base string) (string, error) {
	t.Helper()
	body, err := stream.Params{Model: "claude-sonnet-5-5", MaxTokens: 64, Stream: true,
		Messages: []json.RawMessage{stream.UserMessage("hi")}}.Body()
	require.NoError(t, err)
	req, err := stream.NewRequest(context.Background(), base, body)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: m.tr}).Do(req)
	if err != nil {
		return "", err
	}
	if err := stream.CheckResponse(resp); err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var text bytes.Buffer
	_, err = stream.ReadMessage(resp.Body, nil, func(d stream.Delta) error { text.Write(d.Text); return nil })
	return text.String(), err
}

func oat(marker string) string { return "sk-ant-oat01-" + marker + "-" + strings.Repeat("x", 24) }

// A cooldown recorded on one machine is honoured by the next request of
// another: the rate-limited key is asked once in all.
func TestCooldownSharedAcrossMachines(t *testing.T) {
	r := testenv.RedisServer(t)
	limited, spare := oat("limited"), oat("spare")
	emu, base := startEmulator(t, `{"tokens": [{"contains": "limited", "outcomes": [{"status": 429, "retry_after": 600}]}]}`, nil)
	a, b := newMachine(t, r, nil), newMachine(t, r, nil)
	_, err := a.store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Add(limited, keystore.KeyState{})
		p.Add(spare, keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	for _, m := range []*machine{a, b, a, b} {
		_, err := send(t, m, base)
		require.NoError(t, err, m.log.String())
	}
	st := emu.Stats()
	assert.EqualValues(t, 1, st.Tokens[keystore.Fingerprint(limited)])
	assert.EqualValues(t, 4, st.Tokens[keystore.Fingerprint(spare)])
	p, err := b.store.Pool()
	require.NoError(t, err)
	assert.Equal(t, 1, p.Active)
	assert.Equal(t, keystore.StateCooling, p.Status(0, time.Now()).State)
}

// The Claude Code version one machine learnt is sent by the other at once.
func TestLearntVersionShared(t *testing.T) {
	r := testenv.RedisServer(t)
	emu, base := startEmulator(t, `{"service": {"version_floors": {"claude-sonnet-5-5": "99.1.0"}}}`, nil)
	a, b := newMachine(t, r, nil), newMachine(t, r, nil)
	_, err := a.store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Add(oat("one"), keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	_, err = send(t, a, base)
	require.NoError(t, err, a.log.String())
	_, err = send(t, b, base)
	require.NoError(t, err, b.log.String())
	assert.EqualValues(t, 1, emu.Stats().VersionRefused, "only the first machine was refused")
	assert.Empty(t, b.log.String())
	v, err := b.store.Backend().(keystore.VersionBackend).ClaudeCodeVersion(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "99.1.0", v)
}

// Redis killed while a stream is in flight: the stream finishes, the next
// request goes on with the pool last read, the state write is retried then
// reported; Redis back: the next answer's state is written and another
// machine sees it.
func TestRedisLostMidStream(t *testing.T) {
	r := testenv.PersistentRedisServer(t)
	gate := testenv.NewStreamGate()
	// The 5-hour utilisation changes with every answer, so every answer
	// writes the key's state.
	emu, base := startEmulator(t, `{"reply": {"deltas": 4, "event_delay_ms": 1}, "unified": {"five_hour": 0.5}}`, gate.Sleep)
	a := newMachine(t, r, []time.Duration{5 * time.Millisecond, 10 * time.Millisecond})
	key := oat("inflight")
	_, err := a.store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Add(key, keystore.KeyState{Utilization: 0.1, FiveHour: 0.1})
		return nil
	})
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { _, err := send(t, a, base); done <- err }()
	require.Eventually(t, func() bool { return emu.Stats().Tokens[keystore.Fingerprint(key)] == 1 }, 10*time.Second, time.Millisecond)
	r.Kill()
	gate.Open()
	require.NoError(t, <-done, "the stream in flight finishes")
	assert.Contains(t, a.log.String(), keystore.ErrStoreUnavailable.Error())
	assert.Contains(t, a.log.String(), "key state is kept in this process")

	_, err = send(t, a, base)
	require.NoError(t, err, "the pool last read serves the next request")

	r.Start()
	b := newMachine(t, r, nil)
	require.Eventually(t, func() bool {
		p, err := b.store.Pool()
		return err == nil && len(p.Keys) == 1 && p.State(0).FiveHour > 0.49
	}, 10*time.Second, 10*time.Millisecond, "state converges") // a hang bound
	p, err := b.store.Pool()
	require.NoError(t, err)
	require.Equal(t, []string{key}, p.Keys, "no token lost")
	_, err = send(t, a, base)
	require.NoError(t, err)
	assert.EqualValues(t, 3, emu.Stats().Tokens[keystore.Fingerprint(key)])
}
