package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	dto "github.com/prometheus/client_model/go"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
)

// statusEnv is a pool whose first key is rate-limited, after one streamed
// request (which rotated to key 2) and one refused without a key.
func statusEnv(t *testing.T) *poolEnv {
	t.Helper()
	e := newPoolEnv(t, poolOptions{proxy: proxy.Options{Version: "v9.9.9-test"}}, fakeToken("ratelimited-st"), fakeToken("good-st"))
	resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
	require.Equal(t, 200, resp.StatusCode)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 401, post(t, e.proxy.URL, "/v1/messages", http.Header{}, nil).StatusCode)
	return e
}

// GET /_piauth/status asks for the proxy key exactly as /v1/messages does.
func TestStatusNeedsKey(t *testing.T) {
	e := statusEnv(t)
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"no key", http.Header{}, 401},
		{"wrong key", http.Header{"X-Api-Key": {"wrong-" + clientKey()}}, 401},
		{"bearer", http.Header{"Authorization": {"Bearer " + clientKey()}}, 200},
		{"x-api-key", http.Header{"X-Api-Key": {clientKey()}}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, http.MethodGet, e.proxy.URL+proxy.StatusPath, tt.header, "")
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status == 401 {
				got := decodeFull(t, resp)
				assert.Equal(t, "authentication_error", got.Error.Type)
				assert.True(t, strings.HasPrefix(got.RequestID, proxy.RequestIDPrefix))
			}
		})
	}
	resp := do(t, http.MethodPost, e.proxy.URL+proxy.StatusPath, keyHeader(), "")
	assert.Equal(t, 405, resp.StatusCode)
}

// The status JSON has the field names `piauth proxy status` reads, the
// counters of what was served, and each key's state without any secret.
func TestStatusShape(t *testing.T) {
	e := statusEnv(t)
	resp := do(t, http.MethodGet, e.proxy.URL+proxy.StatusPath, keyHeader(), "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, k := range e.keys {
		assert.NotContains(t, string(raw), k)
	}

	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, f := range []string{"version", "pid", "listen", "started_at", "uptime_seconds", "in_flight", "requests",
		"rotations", "sessions_pinned", "bytes_in", "bytes_out", "keys"} {
		assert.Contains(t, m, f)
	}
	assert.Len(t, m, 12, "no other field")

	var s struct {
		Version   string    `json:"version"`
		PID       int       `json:"pid"`
		StartedAt time.Time `json:"started_at"`
		InFlight  int       `json:"in_flight"`
		Requests  struct {
			Total    int64            `json:"total"`
			ByStatus map[string]int64 `json:"by_status"`
		} `json:"requests"`
		Rotations int64 `json:"rotations"`
		BytesIn   int64 `json:"bytes_in"`
		BytesOut  int64 `json:"bytes_out"`
		Keys      []map[string]any
	}
	require.NoError(t, json.Unmarshal(raw, &s))
	assert.Equal(t, "v9.9.9-test", s.Version)
	assert.Equal(t, os.Getpid(), s.PID)
	assert.False(t, s.StartedAt.IsZero())
	assert.Zero(t, s.InFlight)
	assert.EqualValues(t, 2, s.Requests.Total)
	assert.Equal(t, map[string]int64{"200": 1, "401": 1}, s.Requests.ByStatus)
	assert.EqualValues(t, 1, s.Rotations, "key 1 → key 2")
	assert.Positive(t, s.BytesIn)
	assert.Positive(t, s.BytesOut)

	require.Len(t, s.Keys, 2)
	for i, k := range s.Keys {
		assert.ElementsMatch(t, []string{"index", "fingerprint", "label", "state", "reason", "cooldown_until"}, keysOf(k))
		assert.EqualValues(t, i+1, k["index"])
		assert.Equal(t, keystore.Fingerprint(e.keys[i]), k["fingerprint"])
	}
	assert.Equal(t, "cooling", s.Keys[0]["state"])
	assert.Equal(t, "rate-limited", s.Keys[0]["reason"])
	until, err := time.Parse(time.RFC3339, s.Keys[0]["cooldown_until"].(string))
	require.NoError(t, err)
	assert.True(t, until.After(e.px.Status().StartedAt))
	assert.Equal(t, "active", s.Keys[1]["state"])
	assert.Nil(t, s.Keys[1]["cooldown_until"])
}

func keysOf(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

// GET /metrics is Prometheus text (parsed with Prometheus's own parser):
// requests by route and status, errors by type, rotations, the latency
// histograms, in-flight and per-key state, with no secret in any label.
// It needs no key.
func TestMetrics(t *testing.T) {
	e := statusEnv(t)
	resp := do(t, http.MethodGet, e.proxy.URL+proxy.MetricsPath, nil, "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, k := range append(e.keys, clientKey()) {
		assert.NotContains(t, string(raw), k)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	require.NoError(t, err)

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := fams[name]
		require.True(t, ok, "family %s", name)
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.GetCounter().GetValue()
				case m.Gauge != nil:
					return m.GetGauge().GetValue()
				case m.Histogram != nil:
					return float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		t.Fatalf("%s%v: no such series", name, labels)
		return 0
	}
	assert.Equal(t, 1.0, value("piauth_proxy_requests_total", map[string]string{"path": "/v1/messages", "status": "200"}))
	assert.Equal(t, 1.0, value("piauth_proxy_requests_total", map[string]string{"path": "/v1/messages", "status": "401"}))
	assert.Equal(t, 1.0, value("piauth_proxy_errors_total", map[string]string{"type": "authentication_error"}))
	assert.Equal(t, 1.0, value("piauth_proxy_rotations_total", nil))
	assert.Equal(t, 2.0, value("piauth_proxy_upstream_latency_seconds", nil), "two upstream attempts")
	assert.Equal(t, 2.0, value("piauth_proxy_time_to_first_byte_seconds", nil))
	assert.Equal(t, 0.0, value("piauth_proxy_in_flight", nil))
	assert.Positive(t, value("piauth_proxy_received_bytes_total", nil))
	assert.Positive(t, value("piauth_proxy_sent_bytes_total", nil))
	fp1, fp2 := keystore.Fingerprint(e.keys[0]), keystore.Fingerprint(e.keys[1])
	assert.Equal(t, 1.0, value("piauth_proxy_key_state", map[string]string{"index": "1", "fingerprint": fp1, "state": "cooling"}))
	assert.Equal(t, 0.0, value("piauth_proxy_key_state", map[string]string{"index": "1", "fingerprint": fp1, "state": "active"}))
	assert.Equal(t, 1.0, value("piauth_proxy_key_state", map[string]string{"index": "2", "fingerprint": fp2, "state": "active"}))
	assert.Positive(t, value("piauth_proxy_key_cooldown_seconds", map[string]string{"index": "1", "fingerprint": fp1}))
	assert.Equal(t, 0.0, value("piauth_proxy_key_cooldown_seconds", map[string]string{"index": "2", "fingerprint": fp2}))

	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				assert.Contains(t, []string{"path", "status", "type", "index", "fingerprint", "state", "le"}, l.GetName(), name)
			}
		}
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// Two proxies in one process keep their own metrics.
func TestMetricsPerProxy(t *testing.T) {
	a := newEnv(t, emulator.Options{}, fakeToken("m-a"), proxy.Options{ClientKey: clientKey()})
	b := newEnv(t, emulator.Options{}, fakeToken("m-b"), proxy.Options{ClientKey: clientKey()})
	require.Equal(t, 200, post(t, a.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil)).StatusCode)
	resp := do(t, http.MethodGet, b.proxy.URL+proxy.MetricsPath, nil, "")
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), `piauth_proxy_requests_total{path="/v1/messages",status="200"}`)
}
