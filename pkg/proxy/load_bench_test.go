package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// Load: loadStreams concurrent streams of loadDeltas text deltas each.
const (
	loadStreams = 200
	loadDeltas  = 2000
)

// BenchmarkProxyLoad runs loadStreams streams of loadDeltas deltas at once,
// as fast as the emulator sends them, three ways in turn within each op:
// direct (the client sends through the same credentialed, shaping transport
// the proxy uses), through httputil.ReverseProxy over that transport (the
// floor for a Go proxy that does nothing) and through the proxy. Every
// stream must end with message_stop. The three take turns so that load
// coming and going on a shared machine hits them alike, and each op starts
// with the next one, so that none always runs in the wake of the same other.
// It reports the seconds of each (direct-s, reverseproxy-s, proxy-s) and rp/proxy, the
// floor's time ÷ ours = throughput ours ÷ the floor's
// (scripts/bench.sh: proxy_vs_reverseproxy_ratio).
func BenchmarkProxyLoad(b *testing.B) {
	res := benchLoad(b, emulator.Reply{Text: "word ", Size: 5 * loadDeltas, Deltas: loadDeltas}, nil, 0, loadDeltas)
	b.ReportMetric(res["direct"].seconds(), "direct-s")
	b.ReportMetric(res["reverseproxy"].seconds(), "reverseproxy-s")
	b.ReportMetric(res["proxy"].seconds(), "proxy-s")
	b.ReportMetric(res["reverseproxy"].seconds()/res["proxy"].seconds(), "rp/proxy")
}

// BenchmarkProxyTTFB is BenchmarkProxyLoad at a pace the machine keeps up
// with (each stream sends one event per ttfbDelayMS, the streams start
// ttfbStagger apart, so all loadStreams are open at once), and reports the
// p99 time from sending a request to its first event: under saturation
// that time measures the queue, not the proxy. added-p99-ms = proxy − direct
// (scripts/bench.sh: proxy_p99_ttfb_added_ms).
func BenchmarkProxyTTFB(b *testing.B) {
	pace := &firstAtOnce{seen: map[<-chan struct{}]bool{}}
	res := benchLoad(b, emulator.Reply{Text: "word ", Size: 5 * ttfbDeltas, Deltas: ttfbDeltas, EventDelayMS: ttfbDelayMS}, pace.Sleep, ttfbStagger, ttfbDeltas)
	for _, name := range []string{"direct", "reverseproxy", "proxy"} {
		b.ReportMetric(res[name].p99(), name+"-p99-ms")
	}
	b.ReportMetric(res["proxy"].p99()-res["direct"].p99(), "added-p99-ms")
}

// The pace of BenchmarkProxyTTFB: 200 streams at one event per 50 ms are
// 4,000 events/s (a real answer streams some 20 to 50 events/s), started
// 5 ms apart; 60 deltas keep each one open 3 s, so all 200 are open
// together for 2 s.
const (
	ttfbDelayMS = 50
	ttfbStagger = 5 * time.Millisecond
	ttfbDeltas  = 60
)

// firstAtOnce is an emulator Sleep that lets each request's first event
// pass at once (the time to first event is what is measured) and waits the
// delay asked before every later one.
type firstAtOnce struct {
	mu   sync.Mutex
	seen map[<-chan struct{}]bool
}

func (f *firstAtOnce) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	first := !f.seen[ctx.Done()]
	f.seen[ctx.Done()] = true
	f.mu.Unlock()
	if first {
		return nil
	}
	return when.Sleep(ctx, d)
}

// loadResult is what one way of sending measured over the timed ops.
type loadResult struct {
	total time.Duration
	ops   int
	ttfbs []time.Duration
}

func (r *loadResult) seconds() float64 { return r.total.Seconds() / float64(max(r.ops, 1)) }

// p99 is the 99th percentile time to first event, in ms.
func (r *loadResult) p99() float64 {
	if len(r.ttfbs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(r.ttfbs))
	return float64(s[min(len(s)-1, len(s)*99/100)].Microseconds()) / 1000
}

// loadTarget is one way of sending: a client, a base URL, headers.
type loadTarget struct {
	name   string
	client *http.Client
	base   string
	header http.Header
}

func benchLoad(b *testing.B, reply emulator.Reply, sleep func(context.Context, time.Duration) error, stagger time.Duration, deltas int) map[string]*loadResult {
	up := httptest.NewServer(emulator.New(emulator.Options{Scenario: &emulator.Scenario{Reply: reply}, Sleep: sleep}))
	b.Cleanup(up.Close)
	upURL, err := url.Parse(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	tok := fakeToken("load")
	pool := func() *http.Transport { // every hop keeps a connection per stream
		return &http.Transport{MaxIdleConns: 4 * loadStreams, MaxIdleConnsPerHost: 2 * loadStreams}
	}
	shaped := func(base *http.Transport) http.RoundTripper {
		return &stream.TokenTransport{Base: base, Token: func(context.Context) (string, error) { return tok, nil }}
	}
	rp := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) },
		Transport:     shaped(pool()),
		FlushInterval: -1,
	})
	b.Cleanup(rp.Close)
	pxUp := pool() // tuned as `piauth proxy` tunes its upstream transport
	proxy.TuneTransport(pxUp, 0)
	px := httptest.NewServer(proxy.New(proxy.Options{Client: &http.Client{Transport: shaped(pxUp)}, Upstream: up.URL, ClientKey: clientKey(), Log: io.Discard}))
	b.Cleanup(px.Close)
	targets := []loadTarget{
		{"direct", &http.Client{Transport: shaped(pool())}, up.URL, nil},
		{"reverseproxy", &http.Client{Transport: pool()}, rp.URL, nil},
		{"proxy", &http.Client{Transport: pool()}, px.URL, keyHeader()},
	}
	body := messagesBody(b, true, nil)
	res := map[string]*loadResult{}
	for _, tg := range targets {
		res[tg.name] = &loadResult{}
		loadOp(b, tg, body, stagger, deltas, &loadResult{}) // warm-up: a proxy is long-lived, its connections are open
	}
	b.ReportAllocs()
	for op := 0; b.Loop(); op++ {
		// Each op starts with the next target: whichever runs after another
		// (its connections just closed, its garbage to collect) changes.
		for i := range targets {
			tg := targets[(op+i)%len(targets)]
			start := time.Now()
			loadOp(b, tg, body, stagger, deltas, res[tg.name])
			res[tg.name].total += time.Since(start)
			res[tg.name].ops++
		}
	}
	return res
}

// loadOp runs loadStreams streams through tg at once (started stagger
// apart) and records their times to first event in res.
func loadOp(b *testing.B, tg loadTarget, body []byte, stagger time.Duration, deltas int, res *loadResult) {
	var mu sync.Mutex
	one := func() error {
		req, err := http.NewRequest(http.MethodPost, tg.base+"/v1/messages", bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, vs := range tg.header {
			req.Header[k] = vs
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		start := time.Now()
		resp, err := tg.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := stream.CheckResponse(resp); err != nil {
			return err
		}
		dec := stream.NewDecoder(resp.Body)
		n, stopped := 0, false
		for dec.Next() {
			if n == 0 {
				d := time.Since(start)
				mu.Lock()
				res.ttfbs = append(res.ttfbs, d)
				mu.Unlock()
			}
			n++
			stopped = dec.Event().Name == "message_stop"
		}
		if err := dec.Err(); err != nil || n < deltas || !stopped {
			return fmt.Errorf("%s: stream: %d events, stopped %v, %v", tg.name, n, stopped, err)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, loadStreams)
	for i := range loadStreams {
		if i > 0 && stagger > 0 {
			time.Sleep(stagger)
		}
		wg.Go(func() {
			if err := one(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}
