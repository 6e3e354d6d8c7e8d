package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/rotate"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Sleep advances the clock by d at once (a rotate.Transport Sleep).
func (c *clock) Sleep(_ context.Context, d time.Duration) error {
	c.Advance(d)
	return nil
}

// poolEnv is a proxy over pkg/rotate's transport, watched by the proxy,
// over a pool of keys in a temporary agent dir, in front of an emulator.
type poolEnv struct {
	*env
	store *keystore.Store
	rt    *rotate.Transport
	px    *proxy.Proxy
	keys  []string
}

type poolOptions struct {
	clock    *clock
	scenario *emulator.Scenario
	emu      emulator.Options // Now and Scenario are filled in
	proxy    proxy.Options    // Client, Upstream, ClientKey, Log, Now, Pool are filled in
	setup    func(rt *rotate.Transport)
}

func newPoolEnv(t *testing.T, o poolOptions, keys ...string) *poolEnv {
	t.Helper()
	if o.clock == nil {
		o.clock = newClock()
	}
	store, err := keystore.Open(keystore.Options{Dir: t.TempDir(), Mode: keystore.ModeOff, Now: o.clock.Now})
	require.NoError(t, err)
	_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for _, k := range keys {
			p.Add(k, keystore.KeyState{})
		}
		return nil
	})
	require.NoError(t, err)
	o.emu.Now, o.emu.Scenario = o.clock.Now, o.scenario
	emu := emulator.New(o.emu)
	up, seen := startUpstream(t, emu)
	rt := &rotate.Transport{Source: &rotate.Source{Store: store, Now: o.clock.Now}, Sleep: o.clock.Sleep}
	if o.setup != nil {
		o.setup(rt)
	}
	log := &testenv.Buffer{}
	po := o.proxy
	po.Client, po.Upstream, po.ClientKey, po.Log, po.Now = &http.Client{Transport: rt}, up.URL, clientKey(), log, o.clock.Now
	po.Pool = store.Pool
	po.KeyLabel = rt.KeyLabel
	p := proxy.New(po)
	rt.Base = p.Watch(up.Client().Transport)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &poolEnv{env: &env{emu: emu, upstream: up, proxy: srv, log: log, seen: seen}, store: store, rt: rt, px: p, keys: keys}
}

// setActive makes key i (0-based) the pool's active key.
func (e *poolEnv) setActive(t *testing.T, i int) {
	t.Helper()
	_, err := e.store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		p.Active = i
		return nil
	})
	require.NoError(t, err)
}

// used is the number of Messages requests the emulator got with key i.
func (e *poolEnv) used(i int) int64 {
	return e.emu.Stats().Tokens[emulator.Fingerprint(e.keys[i])]
}
