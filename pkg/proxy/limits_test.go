package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// rawUpstream is a proxy in front of handler, with a plain client (no
// shaping): for upstream answers the emulator never gives.
func rawUpstream(t *testing.T, handler http.HandlerFunc, opts proxy.Options) (base string, log *testenv.Buffer) {
	t.Helper()
	up := httptestServer(t, handler)
	log = &testenv.Buffer{}
	opts.Client, opts.Upstream, opts.Log = &http.Client{}, up, log
	return httptestServer(t, proxy.New(opts)), log
}

// Tokens in upstream error bodies are masked; every other byte is kept
// (clients substring-match error bodies).
func TestErrorBodiesMasked(t *testing.T) {
	tok := "sk-ant-" + "oat01-" + strings.Repeat("Q", 30) + "wxyz"
	errBody := `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: ` + tok + ` (see <docs>)"}}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, resp *http.Response)
	}{
		{name: "error answer", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, errBody)
		}, check: func(t *testing.T, resp *http.Response) {
			require.Equal(t, 401, resp.StatusCode)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, secret.MaskAll(errBody), string(got))
			assert.Contains(t, string(got), "sk-ant-oat01-QQ…wxyz (see <docs>)")
		}},
		{name: "stream error event", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: error\ndata: "+errBody+"\n\n")
		}, check: func(t *testing.T, resp *http.Response) {
			require.Equal(t, 200, resp.StatusCode)
			evs := readEvents(t, resp.Body)
			require.Len(t, evs, 2)
			assert.Equal(t, event{"error", secret.MaskAll(errBody)}, evs[1])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, log := rawUpstream(t, tt.handler, proxy.Options{})
			resp := post(t, base, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
			tt.check(t, resp)
			assert.NotContains(t, log.String(), tok)
		})
	}
}

// openStream starts a streamed request and waits for its first event: it
// is then in flight.
func openStream(t *testing.T, base string, body []byte) *stream.Decoder {
	t.Helper()
	resp := post(t, base, "/v1/messages", keyHeader(), body)
	require.Equal(t, 200, resp.StatusCode)
	dec := stream.NewDecoder(resp.Body)
	require.True(t, dec.Next(), "first event: %v", dec.Err())
	return dec
}

func drain(t *testing.T, dec *stream.Decoder) {
	t.Helper()
	for dec.Next() {
	}
	require.NoError(t, dec.Err())
}

func requireBusy(t *testing.T, resp *http.Response, msg string) {
	t.Helper()
	require.Equal(t, 529, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, "true", resp.Header.Get("X-Should-Retry"))
	apiErr := decodeError(t, resp)
	assert.Equal(t, "overloaded_error", apiErr.Error.Type)
	assert.Contains(t, apiErr.Error.Message, msg)
}

// Past MaxInFlight requests at once the proxy answers 529 and forwards
// nothing; a slot frees when a request ends.
func TestInFlightLimit(t *testing.T) {
	g := testenv.NewStreamGate()
	e := newEnv(t, emulator.Options{Scenario: slowReply(), Sleep: g.Sleep}, fakeToken("inflight"), proxy.Options{ClientKey: clientKey(), MaxInFlight: 2})
	a := openStream(t, e.proxy.URL, messagesBody(t, true, nil))
	b := openStream(t, e.proxy.URL, messagesBody(t, true, nil))

	requireBusy(t, post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil)), "2 requests in flight")
	assert.Equal(t, int64(2), e.emu.Stats().Requests["/v1/messages"])

	g.Open()
	drain(t, a)
	drain(t, b)
	assert.Eventually(t, func() bool {
		resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
		return resp.StatusCode == 200
	}, 5*time.Second, 20*time.Millisecond)
	assert.Contains(t, e.log.String(), " 529 ")
}

// Request bodies held at once stay within MaxBodyBytesInFlight, with a
// Content-Length or chunked.
func TestBodyBudget(t *testing.T) {
	const limit = 1 << 20
	big := messagesBody(t, true, func(m map[string]any) {
		m["messages"] = []any{map[string]any{"role": "user", "content": strings.Repeat("a", 700<<10)}}
	})
	g := newGate(1)
	e := newEnv(t, emulator.Options{Scenario: slowReply(), Sleep: g.Sleep}, fakeToken("budget"), proxy.Options{
		ClientKey: clientKey(), MaxBodyBytes: limit, MaxBodyBytesInFlight: limit,
	})
	held := openStream(t, e.proxy.URL, big)

	requireBusy(t, post(t, e.proxy.URL, "/v1/messages", keyHeader(), big), "request bodies in flight fill the proxy's 1 MiB")
	req, err := http.NewRequest(http.MethodPost, e.proxy.URL+"/v1/messages", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.Header = keyHeader()
	resp, err := http.DefaultClient.Do(req) // no Content-Length: chunked
	require.NoError(t, err)
	defer resp.Body.Close()
	requireBusy(t, resp, "request bodies in flight")
	assert.Equal(t, int64(1), e.emu.Stats().Requests["/v1/messages"])

	close(g.open)
	drain(t, held)
	drain(t, openStream(t, e.proxy.URL, big)) // the budget was given back
}

// sseHandler streams message_start, then body.
func sseHandler(body func(w io.Writer)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n")
		w.(http.Flusher).Flush()
		body(w)
	}
}

// An upstream event over MaxEventBytes cuts the stream with an error event
// and a log entry; many events adding up to more pass.
func TestEventTooLarge(t *testing.T) {
	const limit = 1 << 20
	tests := []struct {
		name    string
		body    func(w io.Writer)
		events  int // events the client gets, the error included
		tooBig  bool
		logWant string
	}{
		{name: "one long line", tooBig: true, events: 2, logWant: "error=event_too_large", body: func(w io.Writer) {
			io.WriteString(w, "event: content_block_delta\ndata: ")
			chunk := strings.Repeat("x", 64<<10)
			for range 3 * limit / len(chunk) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return // the proxy hung up
				}
			}
		}},
		{name: "many short lines in one event", tooBig: true, events: 2, logWant: "error=event_too_large", body: func(w io.Writer) {
			io.WriteString(w, "event: content_block_delta\n")
			for range 3 * limit / 1024 {
				if _, err := io.WriteString(w, "data: "+strings.Repeat("y", 1017)+"\n"); err != nil {
					return
				}
			}
		}},
		{name: "many events adding up to more", events: 3*limit/1024 + 2, body: func(w io.Writer) {
			for i := range 3 * limit / 1024 {
				sep := []string{"\n\n", "\r\n\r\n", "\r\r"}[i%3]
				fmt.Fprintf(w, "event: ping\ndata: %s%s", strings.Repeat("z", 1000), sep)
			}
			io.WriteString(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, log := rawUpstream(t, sseHandler(tt.body), proxy.Options{MaxEventBytes: limit})
			resp := post(t, base, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
			require.Equal(t, 200, resp.StatusCode)
			evs := readEvents(t, resp.Body)
			require.Len(t, evs, tt.events)
			assert.Equal(t, "message_start", evs[0].Name)
			last := evs[len(evs)-1]
			if tt.tooBig {
				assert.Equal(t, "error", last.Name)
				assert.Contains(t, last.Data, `"type":"api_error"`)
				assert.Contains(t, last.Data, "exceeds 1 MiB, the proxy's limit")
			} else {
				assert.Equal(t, "message_stop", last.Name)
			}
			assert.Eventually(t, func() bool { return strings.Contains(log.String(), tt.logWant) }, 5*time.Second, 10*time.Millisecond, log.String())
		})
	}
}

// LimitEventStreams bounds event streams only, below any other transport.
func TestLimitEventStreams(t *testing.T) {
	payload := strings.Repeat("x", 4096)
	tests := []struct {
		name, contentType string
		wantErr           bool
	}{
		{"event stream", "text/event-stream; charset=utf-8", true},
		{"JSON", "application/json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, "data: "+payload+"\n\n")
			}))
			c := &http.Client{Transport: proxy.LimitEventStreams(nil, 1024)}
			resp, err := c.Get(up)
			require.NoError(t, err)
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if tt.wantErr {
				require.ErrorIs(t, err, proxy.ErrEventTooLarge)
				assert.Len(t, got, 1024, "exactly the limit passed")
				_, err = resp.Body.Read(make([]byte, 1))
				assert.ErrorIs(t, err, proxy.ErrEventTooLarge, "for good")
			} else {
				require.NoError(t, err)
				assert.Len(t, got, len(payload)+8)
			}
		})
	}
}

// A non-streamed answer over the cap is a 502, never a truncated 200.
func TestMessageAnswerTooLarge(t *testing.T) {
	base, _ := rawUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"type":"message","content":[{"type":"text","text":"`)
		chunk := strings.Repeat("x", 1<<20)
		for range 33 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `"}]}`)
	}, proxy.Options{})
	resp := post(t, base, "/v1/messages", keyHeader(), messagesBody(t, false, nil))
	require.Equal(t, 502, resp.StatusCode)
	assert.Contains(t, decodeError(t, resp).Error.Message, "exceeds 32 MiB")
}

// Past MaxConns open connections, a new one waits for one to close.
func TestMaxConns(t *testing.T) {
	e := newEnv(t, emulator.Options{}, fakeToken("conns"), proxy.Options{})
	base := serveOn(t, "127.0.0.1:0", proxy.New(proxy.Options{
		Client: tokenClient(e.upstream, fakeToken("conns")), Upstream: e.upstream.URL, MaxConns: 1,
	}))
	idle, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer idle.Close()
	time.Sleep(50 * time.Millisecond) // the proxy accepted it

	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/v1/messages", bytes.NewReader(messagesBody(t, false, nil)))
		req.Header = keyHeader()
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("served past MaxConns: %d", code)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, idle.Close())
	select {
	case code := <-done:
		assert.Equal(t, 200, code)
	case <-time.After(5 * time.Second):
		t.Fatal("not served after a connection closed")
	}
}
