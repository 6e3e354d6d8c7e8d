package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/stream"
)

// heldStreams is how many streams BenchmarkProxyHeldStreams holds open;
// churnRequests is how many short requests it then sends past them.
const (
	heldStreams   = 200
	churnRequests = 2000
)

// BenchmarkProxyHeldStreams measures what an open stream costs a real
// `piauth proxy` process: its resident memory (VmRSS) with heldStreams
// streams held in the middle (the emulator's StreamGate holds every event
// after message_start) minus its resident memory idle (after a warm-up),
// per stream, reported as KB/stream (scripts/bench.sh: proxy_kb_per_stream
// from http1, proxy_kb_per_stream_h2 from https-h2). Then, with the streams
// still held, churnRequests short requests go through it, as they would to
// a proxy left running, and it is measured again (steady-KB/stream,
// proxy_kb_per_stream_steady): the collector lets the heap grow to twice
// what is live between collections, the held streams' buffers counted whole
// whether their pages were touched or not, so the figure after the churn is
// what the held streams cost a proxy that keeps serving.
// The peer, measured the same way in the same run, is a process that does
// nothing but httputil.ReverseProxy over the same shaping transport
// (rp-KB/stream): the floor of a Go proxy. Two upstreams: the emulator over
// plain HTTP/1.1 (http1: a connection, and its goroutines and buffers, per
// stream) and over TLS with HTTP/2, as api.anthropic.com is served
// (https-h2: streams share a connection).
func BenchmarkProxyHeldStreams(b *testing.B) {
	b.Run("http1", func(b *testing.B) { benchHeldStreams(b, false) })
	b.Run("https-h2", func(b *testing.B) { benchHeldStreams(b, true) })
}

func benchHeldStreams(b *testing.B, overTLS bool) {
	gate := testenv.NewStreamGate()
	emu := emulator.New(emulator.Options{Scenario: &emulator.Scenario{Reply: emulator.Reply{EventDelayMS: 1, Deltas: 5}}, Sleep: gate.Sleep})
	var all, h2 atomic.Int64 // requests that reached the emulator; over HTTP/2
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		all.Add(1)
		if r.ProtoMajor == 2 {
			h2.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	env := map[string]string{}
	if overTLS {
		up.EnableHTTP2 = true
		up.StartTLS()
		// Both processes trust the test server's certificate, and only it.
		ca := filepath.Join(b.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
			b.Fatal(err)
		}
		env["SSL_CERT_FILE"], env["SSL_CERT_DIR"] = ca, b.TempDir()
	} else {
		up.Start()
	}
	b.Cleanup(up.Close)
	b.Cleanup(gate.Open)
	dir := b.TempDir()
	tok := proxyTok("held")
	writeLogin(b, dir, tok)

	px := exec.Command(piauthBinary(b), "--dir", dir, "--keyring", "off", "proxy", "--no-auth", "--addr", "127.0.0.1:0")
	state := b.TempDir()
	pxEnv := map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": state, "XDG_CONFIG_HOME": state, "PIAUTH_LEDGER": "off"}
	rpEnv := map[string]string{rpFloorEnv: up.URL, rpFloorTokenEnv: tok}
	maps.Copy(pxEnv, env)
	maps.Copy(rpEnv, env)
	px.Env = relEnv(pxEnv)
	rp := exec.Command(os.Args[0], "-test.run=^$")
	rp.Env = relEnv(rpEnv)

	var ours, floor heldKB
	for b.Loop() {
		ours = heldStreamsKB(b, px, gate)
		floor = heldStreamsKB(b, rp, gate)
	}
	want := int64(0) // over TLS, every request speaks HTTP/2
	if overTLS {
		want = all.Load()
	}
	if h2.Load() != want {
		b.Fatalf("%d of %d requests reached the emulator over HTTP/2, want %d", h2.Load(), all.Load(), want)
	}
	b.ReportMetric(ours.perStream, "KB/stream")
	b.ReportMetric(floor.perStream, "rp-KB/stream")
	b.ReportMetric(ours.steady, "steady-KB/stream")
	b.ReportMetric(floor.steady, "rp-steady-KB/stream")
	b.ReportMetric(ours.idle, "idle-KB")
}

// heldKB is what heldStreamsKB measured of a proxy: its RSS growth per held
// stream right after they opened and after churnRequests more, and its idle
// RSS, in KB.
type heldKB struct{ perStream, steady, idle float64 }

// heldStreamsKB starts cmd (a proxy printing "listening on URL" first),
// warms it up, holds heldStreams streams open through it, sends
// churnRequests short requests past them (4 at a time) and returns what it
// measured; cmd is killed after.
func heldStreamsKB(b *testing.B, cmd *exec.Cmd, gate *testenv.StreamGate) heldKB {
	b.Helper()
	env := cmd.Env
	cmd = exec.Command(cmd.Path, cmd.Args[1:]...) // a fresh Cmd each time: one runs once
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	br := bufio.NewReader(stdout)
	first, err := br.ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	go io.Copy(io.Discard, br) //nolint:errcheck // drain
	base := strings.TrimSpace(strings.TrimPrefix(first, "listening on "))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: heldStreams}}
	defer client.CloseIdleConnections()
	send := func(streamed bool) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(chatBody(streamed)))
		if err != nil {
			return nil, err
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		return client.Do(req)
	}
	for range 5 { // warm-up: what every request needs is loaded
		resp, err := send(false)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	idleKB := rssKB(b, cmd.Process.Pid)
	var wg sync.WaitGroup
	held := make(chan *http.Response, heldStreams)
	errs := make(chan error, heldStreams)
	for range heldStreams {
		wg.Go(func() {
			resp, err := send(true)
			if err != nil {
				errs <- err
				return
			}
			if err := stream.CheckResponse(resp); err != nil {
				errs <- err
				return
			}
			dec := stream.NewDecoder(resp.Body)
			if !dec.Next() || dec.Event().Name != "message_start" {
				errs <- dec.Err()
				return
			}
			held <- resp
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("open stream through %s: %v", cmd.Path, err)
	}
	res := heldKB{perStream: float64(rssKB(b, cmd.Process.Pid)-idleKB) / heldStreams, idle: float64(idleKB)}
	churn := make(chan struct{}, churnRequests)
	for range churnRequests {
		churn <- struct{}{}
	}
	close(churn)
	churnErrs := make(chan error, 4)
	var cw sync.WaitGroup
	for range 4 {
		cw.Go(func() {
			for range churn {
				resp, err := send(false)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil {
					churnErrs <- err
					return
				}
			}
		})
	}
	cw.Wait()
	close(churnErrs)
	for err := range churnErrs {
		b.Fatalf("a request past the held streams through %s: %v", cmd.Path, err)
	}
	res.steady = float64(rssKB(b, cmd.Process.Pid)-idleKB) / heldStreams
	close(held)
	for resp := range held {
		resp.Body.Close()
	}
	return res
}

// The ReverseProxy floor process of BenchmarkProxyHeldStreams: the test
// binary run with rpFloorEnv set to the upstream URL (and rpFloorTokenEnv
// to the token its shaping transport sends).
const (
	rpFloorEnv      = "PIAUTH_TEST_RP_FLOOR"
	rpFloorTokenEnv = "PIAUTH_TEST_RP_FLOOR_TOKEN"
)

// serveRPFloor serves the floor proxy until killed when rpFloorEnv is set
// (called first by TestMain); false otherwise.
func serveRPFloor() bool {
	upstream := os.Getenv(rpFloorEnv)
	if upstream == "" {
		return false
	}
	upURL, err := url.Parse(upstream)
	if err != nil {
		panic(err)
	}
	tok := os.Getenv(rpFloorTokenEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) },
		Transport: &stream.TokenTransport{Base: &http.Transport{MaxIdleConnsPerHost: 2 * heldStreams},
			Token: func(context.Context) (string, error) { return tok, nil }},
		FlushInterval: -1,
	}
	_ = http.Serve(ln, rp)
	return true
}

// rssKB is VmRSS of process pid in KB.
func rssKB(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// writeLogin writes an agent dir's auth.json with a valid OAuth login.
func writeLogin(b *testing.B, dir, tok string) {
	b.Helper()
	doc := `{"anthropic":{"type":"oauth","access":"` + tok + `","refresh":"","expires":4102444800000}}`
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(doc), 0o600); err != nil {
		b.Fatal(err)
	}
}
