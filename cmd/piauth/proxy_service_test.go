package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// poolOf puts toks in the agent dir's pool.
func (e *proxyCmdEnv) poolOf(t *testing.T, toks ...string) {
	t.Helper()
	store, err := keystore.Open(keystore.Options{Dir: e.dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	_, err = store.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for _, tok := range toks {
			p.Add(tok, keystore.KeyState{})
		}
		return nil
	})
	require.NoError(t, err)
}

// proxyGet sends GET (or HEAD) path to the proxy with the proxy key.
func proxyGet(t *testing.T, method, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// `piauth proxy` wires the pool into /_piauth/status and /metrics, sees
// each attempt (the rotation is counted) and lists the models from the
// upstream with its own credential.
func TestProxyCommandStatusMetricsModels(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	limited, good := proxyTok("ratelimited-s"), proxyTok("good-s")
	e.poolOf(t, limited, good)
	p := e.startProxyCmd(t)

	resp := proxyPost(t, p.url, true, "x-api-key", p.key)
	require.Equal(t, 200, resp.StatusCode)
	_, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err)

	assert.Equal(t, 200, proxyGet(t, http.MethodHead, p.url+"/", "").StatusCode)
	assert.Equal(t, 401, proxyGet(t, http.MethodGet, p.url+proxy.StatusPath, "").StatusCode)

	resp = proxyGet(t, http.MethodGet, p.url+proxy.StatusPath, p.key)
	require.Equal(t, 200, resp.StatusCode)
	var st proxy.Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	assert.Equal(t, appVersion(), st.Version)
	assert.Equal(t, p.url, st.Listen)
	assert.EqualValues(t, 1, st.Rotations)
	require.Len(t, st.Keys, 2)
	assert.Equal(t, "cooling", st.Keys[0].State)
	assert.NotNil(t, st.Keys[0].CooldownUntil)
	assert.Equal(t, "active", st.Keys[1].State)
	assert.Equal(t, keystore.Fingerprint(good), st.Keys[1].Fingerprint)

	resp = proxyGet(t, http.MethodGet, p.url+proxy.MetricsPath, "")
	require.Equal(t, 200, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, 1.0, fams["piauth_proxy_rotations_total"].GetMetric()[0].GetCounter().GetValue())
	assert.Len(t, fams["piauth_proxy_key_state"].GetMetric(), 2*6, "2 keys × 6 states")

	resp = proxyGet(t, http.MethodGet, p.url+"/v1/models?limit=1000", p.key)
	require.Equal(t, 200, resp.StatusCode)
	var models struct {
		Data []struct{ ID, CreatedAt string } `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&models))
	require.NotEmpty(t, models.Data)
	assert.EqualValues(t, 1, e.emu.Stats().Requests["/v1/models"], "asked upstream")

	require.Equal(t, 0, p.stop())
	for _, tok := range []string{limited, good, p.key} {
		assert.NotContains(t, p.stderr.String(), tok)
	}
}

// --max-retry-after caps the retry-after of the proxy's 429; the 429 keeps
// the upstream's rate-limit headers.
func TestProxyCommandMaxRetryAfter(t *testing.T) {
	e := newProxyCmdEnv(t, emulator.Options{})
	e.poolOf(t, proxyTok("ratelimited-m1"), proxyTok("ratelimited-m2"))
	p := e.startProxyCmd(t, "--max-retry-after", "7s")
	resp := proxyPost(t, p.url, false, "x-api-key", p.key)
	require.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "7", resp.Header.Get("Retry-After"))
	assert.Equal(t, "rejected", resp.Header.Get("Anthropic-Ratelimit-Unified-Status"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"request_id":"`+proxy.RequestIDPrefix)
	require.Equal(t, 0, p.stop())
}

// --wait-for-key holds a request while both keys cool down for a second
// and answers it once one frees.
func TestProxyCommandWaitForKey(t *testing.T) {
	once := []emulator.Outcome{{Status: 429, RetryAfter: 1}, {Status: 200}}
	e := newProxyCmdEnv(t, emulator.Options{Scenario: &emulator.Scenario{Tokens: []emulator.TokenRule{
		{Contains: "once-w1", Outcomes: once}, {Contains: "once-w2", Outcomes: once},
	}}})
	e.poolOf(t, proxyTok("once-w1"), proxyTok("once-w2"))
	p := e.startProxyCmd(t, "--wait-for-key", "30s")
	resp := proxyPost(t, p.url, true, "x-api-key", p.key)
	require.Equal(t, 200, resp.StatusCode)
	_, err := stream.ReadMessage(resp.Body, nil, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 3, e.emu.Stats().Requests["/v1/messages"])
	require.Equal(t, 0, p.stop())
	assert.Contains(t, p.stderr.String(), "waiting")
}

func TestProxyCommandServiceFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--max-retry-after", "0s"}, {"--wait-for-key", "-1s"}, {"--max-retry-after", "soon"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			e := newProxyCmdEnv(t, emulator.Options{})
			f, bufs := e.factory(map[string]string{"PIAUTH_BASE_URL": e.url})
			code := run(context.Background(), f, e.args(append([]string{"proxy"}, args...)...))
			assert.Equal(t, 2, code, bufs.Err.String())
			assert.Contains(t, bufs.Err.String(), strings.TrimLeft(args[0], "-"))
		})
	}
}
