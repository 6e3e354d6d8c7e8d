package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// Three real `piauth proxy` processes on one store, 50 streams each, the
// pool's first key rate-limited: every stream completes, the key's cooldown
// is recorded once in all, and no proxy sends more than one request to it
// once that cooldown is in the store.
//
// The upstream holds the limited key's answers until every stream of the
// first wave (25 per proxy, all started before any 429) has reached it;
// the second wave starts once the cooldown is in the store.
func TestStoreThreeProxiesOneCooldown(t *testing.T) {
	const proxies, perProxy = 3, 50
	wave1 := perProxy / 2
	e := newStoreEnv(t)
	sc, err := emulator.ParseScenario([]byte(`{"reply": {"deltas": 3},
		"tokens": [{"contains": "limited", "outcomes": [{"status": 429, "retry_after": 600}]}]}`))
	require.NoError(t, err)
	emu := emulator.New(emulator.Options{Scenario: sc})
	up := httptest.NewServer(emu)
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	limited, spare := proxyTok("limited-scale"), proxyTok("spare-scale")
	b := storeBackend(t, e)
	_, err = b.UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
		p.Add(limited, keystore.KeyState{})
		p.Add(spare, keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	cooling := func() bool {
		p, err := b.ReadPool(context.Background())
		return err == nil && p.Status(0, time.Now()).State == keystore.StateCooling
	}

	// One front per proxy, so each request is known by the proxy it came from.
	var arrived atomic.Int64
	release := make(chan struct{})
	var releaseOnce sync.Once
	after := make([]atomic.Int64, proxies)
	fronts := make([]string, proxies)
	for i := range proxies {
		rp := httputil.NewSingleHostReverseProxy(upURL)
		rp.FlushInterval = -1
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.Header.Get("Authorization"), "limited") && r.URL.Path == "/v1/messages" {
				if cooling() {
					after[i].Add(1)
				}
				if arrived.Add(1) == int64(proxies*wave1) {
					releaseOnce.Do(func() { close(release) })
				}
				select {
				case <-release:
				case <-time.After(30 * time.Second): // a hang bound, not a speed claim
				}
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		fronts[i] = front.URL
	}

	procs := make([]*proxyProcess, proxies)
	keys := make([]string, proxies)
	for i := range proxies {
		dir := t.TempDir()
		env := e.vars()
		env["PIAUTH_BASE_URL"], env["PIAUTH_STATE_DIR"], env["PIAUTH_LEDGER"] = fronts[i], t.TempDir(), "off"
		procs[i] = startProxy(t, dir, env, "\x00", "--addr", "127.0.0.1:0")
		k, err := os.ReadFile(keystore.ProxyKeyPath(env["PIAUTH_STATE_DIR"]))
		require.NoError(t, err)
		keys[i] = strings.TrimSpace(string(k))
	}

	var completed atomic.Int64
	var failures sync.Map
	stream := func(i, n int) {
		req, err := http.NewRequest(http.MethodPost, procs[i].base+"/v1/messages", bytes.NewReader(chatBody(true)))
		if err != nil {
			failures.Store(n, err.Error())
			return
		}
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		req.Header.Set("x-api-key", keys[i])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			failures.Store(n, err.Error())
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("message_stop")) {
			failures.Store(n, resp.Status+" "+string(body))
			return
		}
		completed.Add(1)
	}
	var wg sync.WaitGroup
	for i := range proxies {
		for j := range wave1 {
			wg.Go(func() { stream(i, i*perProxy+j) })
		}
	}
	require.Eventually(t, cooling, 30*time.Second, 5*time.Millisecond, "the cooldown reaches the store")
	for i := range proxies {
		for j := wave1; j < perProxy; j++ {
			wg.Go(func() { stream(i, i*perProxy+j) })
		}
	}
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("stream %v: %v", k, v); return true })
	assert.EqualValues(t, proxies*perProxy, completed.Load())

	recorded := 0
	for _, p := range procs {
		for line := range strings.Lines(p.stderr.String()) {
			if strings.Contains(line, keystore.Mask(limited)+") cooling until") {
				recorded++
			}
		}
	}
	assert.Equal(t, 1, recorded, "one cooldown recorded for the limited key")
	for i := range proxies {
		assert.LessOrEqual(t, after[i].Load(), int64(1), "proxy %d sent to the limited key after its cooldown was stored", i+1)
	}
	st := emu.Stats()
	assert.EqualValues(t, proxies*wave1, st.Tokens[keystore.Fingerprint(limited)], "only the first wave asked the limited key")
	assert.EqualValues(t, proxies*perProxy, st.Tokens[keystore.Fingerprint(spare)])
}
