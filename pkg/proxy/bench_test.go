package proxy_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// benchDeltas is the number of text deltas of the benchmark's reply.
const benchDeltas = 20000

// BenchmarkProxyOverhead streams a 20,000-delta emulator reply directly
// (through the same credentialed client the proxy uses) and through the
// proxy. proxy_overhead_ratio = proxy ns/op ÷ direct ns/op.
func BenchmarkProxyOverhead(b *testing.B) {
	sc := &emulator.Scenario{Reply: emulator.Reply{Text: "benchmark text, ", Size: 8 * benchDeltas, Deltas: benchDeltas}}
	emu := emulator.New(emulator.Options{Scenario: sc})
	up, _ := startUpstream(b, emu)
	tok := fakeToken("bench")
	upstreamClient := tokenClient(up, tok)
	body := messagesBody(b, true, nil)

	run := func(b *testing.B, do func() (*http.Response, error)) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := do()
			if err != nil {
				b.Fatal(err)
			}
			if err := stream.CheckResponse(resp); err != nil {
				b.Fatal(err)
			}
			n := 0
			dec := stream.NewDecoder(resp.Body)
			for dec.Next() {
				n++
			}
			resp.Body.Close()
			if err := dec.Err(); err != nil || n < benchDeltas {
				b.Fatalf("stream: %d events, %v", n, err)
			}
		}
	}

	b.Run("direct", func(b *testing.B) {
		run(b, func() (*http.Response, error) {
			req, err := stream.NewRequest(context.Background(), up.URL, body)
			if err != nil {
				return nil, err
			}
			return upstreamClient.Do(req)
		})
	})
	b.Run("proxy", func(b *testing.B) {
		px := httptestServer(b, proxy.New(proxy.Options{Client: upstreamClient, Upstream: up.URL, ClientKey: clientKey(), Log: io.Discard}))
		client := &http.Client{Transport: &http.Transport{}}
		run(b, func() (*http.Response, error) {
			req, err := http.NewRequest(http.MethodPost, px+"/v1/messages", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header = keyHeader()
			return client.Do(req)
		})
	})
}
