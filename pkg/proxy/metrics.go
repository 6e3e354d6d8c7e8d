package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/piauth/piauth/pkg/keystore"
)

// metrics are the proxy's Prometheus series, in a registry of its own (never
// the global one: two proxies in one process, or a test, do not share).
// Labels hold no secret: routes, statuses, error types, key indexes and
// fingerprints.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec // by route and status
	errors    *prometheus.CounterVec // by error type
	rotations prometheus.Counter
	upstream  prometheus.Histogram // per upstream attempt, until its answer's headers
	ttfb      prometheus.Histogram // per request, until the first byte to the client
	bytesIn   prometheus.CounterFunc
	bytesOut  prometheus.CounterFunc
}

// latencyBuckets span a local emulator (sub-millisecond) to a slow upstream.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(p *Proxy) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piauth_proxy_requests_total", Help: "Requests answered, by route and HTTP status.",
		}, []string{"path", "status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "piauth_proxy_errors_total", Help: "Requests that failed, by error type (Anthropic's error.type, client_closed, truncated, …).",
		}, []string{"type"}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "piauth_proxy_rotations_total", Help: "Moves of a request to another pool key (rate limit, overload, refusal).",
		}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "piauth_proxy_upstream_latency_seconds", Help: "Time from sending an upstream attempt to its answer's headers.",
			Buckets: latencyBuckets,
		}),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "piauth_proxy_time_to_first_byte_seconds", Help: "Time from a request's arrival to the first byte of its answer.",
			Buckets: latencyBuckets,
		}),
		bytesIn: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "piauth_proxy_received_bytes_total", Help: "Request body bytes read from clients (as sent, before decoding).",
		}, func() float64 { return float64(p.stats.bytesIn.Load()) }),
		bytesOut: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "piauth_proxy_sent_bytes_total", Help: "Response body bytes written to clients.",
		}, func() float64 { return float64(p.stats.bytesOut.Load()) }),
	}
	m.reg.MustRegister(m.requests, m.errors, m.rotations, m.upstream, m.ttfb, m.bytesIn, m.bytesOut,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "piauth_proxy_in_flight", Help: "Requests being forwarded now.",
		}, func() float64 { return float64(len(p.inFlight)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "piauth_proxy_sessions_pinned", Help: "Sessions (X-Claude-Code-Session-Id, metadata.user_id) kept on their key.",
		}, func() float64 { return float64(p.sessions.pinned(p.opts.Now())) }),
		&keyCollector{p: p},
	)
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// keyStates are the states a key gauge reports, one series each.
var keyStates = []keystore.State{keystore.StateActive, keystore.StateReady, keystore.StateCooling,
	keystore.StateNeedsReauth, keystore.StateDisabled, keystore.StateRevoked}

var (
	keyStateDesc = prometheus.NewDesc("piauth_proxy_key_state",
		"1 for the state each pool key is in (keystore.Pool.Status), 0 for the others.",
		[]string{"index", "fingerprint", "state"}, nil)
	keyCooldownDesc = prometheus.NewDesc("piauth_proxy_key_cooldown_seconds",
		"Seconds until a cooling pool key is usable again (0 when it is not cooling).",
		[]string{"index", "fingerprint"}, nil)
)

// keyCollector reads the pool at each scrape.
type keyCollector struct{ p *Proxy }

func (c *keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keyStateDesc
	ch <- keyCooldownDesc
}

func (c *keyCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.p.opts.Now()
	for _, k := range c.p.keyStatuses(now) {
		idx := strconv.Itoa(k.Index)
		for _, s := range keyStates {
			v := 0.0
			if string(s) == k.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(keyStateDesc, prometheus.GaugeValue, v, idx, k.Fingerprint, string(s))
		}
		left := 0.0
		if k.CooldownUntil != nil {
			left = max(k.CooldownUntil.Sub(now).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(keyCooldownDesc, prometheus.GaugeValue, left, idx, k.Fingerprint)
	}
}

// stats are the counters /_piauth/status reports.
type stats struct {
	mu       sync.Mutex
	total    int64
	byStatus map[int]int64
	rotated  atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
}

// answered counts a request's answer the moment its status goes out (so
// that a client holding the answer sees it counted): by status in the
// status counters, by route and status in the metrics, and its time to
// first byte.
func (p *Proxy) answered(rec *record, cw *countingWriter, status int) {
	p.stats.mu.Lock()
	p.stats.total++
	if p.stats.byStatus == nil {
		p.stats.byStatus = map[int]int64{}
	}
	p.stats.byStatus[status]++
	p.stats.mu.Unlock()
	route := rec.route
	if route == "" {
		route = "other"
	}
	p.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if !cw.first.IsZero() {
		p.metrics.ttfb.Observe(cw.first.Sub(cw.start).Seconds())
	}
}

// countError counts rec's error once (by type).
func (p *Proxy) countError(rec *record) {
	if rec.Error != "" && !rec.errorCounted {
		rec.errorCounted = true
		p.metrics.errors.WithLabelValues(rec.Error).Inc()
	}
}

// finished counts what is known only once a request is over: an answer
// never sent (the client went away: 499) and an error found while
// streaming.
func (p *Proxy) finished(rec *record, cw *countingWriter) {
	if cw.first.IsZero() {
		p.answered(rec, cw, rec.Status)
	}
	p.countError(rec)
}

// countRotations counts the moves of a request to another key, as soon as
// its answer arrived.
func (p *Proxy) countRotations(n int) {
	if n > 0 {
		p.stats.rotated.Add(int64(n))
		p.metrics.rotations.Add(float64(n))
	}
}

// countingWriter counts the body bytes written to the client and calls
// onAnswer when the status goes out. Unwrap lets http.ResponseController
// reach the connection's Flush.
type countingWriter struct {
	http.ResponseWriter
	n        *atomic.Int64
	start    time.Time
	first    time.Time // when the status went out
	onAnswer func(status int)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.first.IsZero() {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.ResponseWriter.Write(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingWriter) WriteHeader(code int) {
	if c.first.IsZero() && code >= 200 {
		c.first = time.Now()
		c.ResponseWriter.WriteHeader(code)
		if c.onAnswer != nil {
			c.onAnswer(code)
		}
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

// Flush flushes the underlying writer (for callers that assert
// http.Flusher rather than using a ResponseController).
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
