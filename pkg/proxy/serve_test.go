package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/proxy"
	"github.com/piauth/piauth/pkg/stream"
)

// watchWriter is a log that closes seen once a line containing want arrives.
type watchWriter struct {
	testenv.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// servedProxy runs ServeListener on a loopback port in front of a gated
// emulator and returns the proxy URL, the gate, the upstream's record, the
// log, the cancel of the serving context and ServeListener's result.
func servedProxy(t *testing.T, shutdown time.Duration) (string, *gate, *seenBodies, *watchWriter, context.CancelFunc, <-chan error) {
	t.Helper()
	g := newGate(1)
	emu := emulator.New(emulator.Options{Scenario: slowReply(), Sleep: g.Sleep})
	up, seen := startUpstream(t, emu)
	log := &watchWriter{want: "shutting down", seen: make(chan struct{})}
	p := proxy.New(proxy.Options{
		Client: tokenClient(up, fakeToken("serve")), Upstream: up.URL, ClientKey: clientKey(),
		Log: log, ShutdownTimeout: shutdown,
	})
	ln, err := proxy.Listen(":0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- p.ServeListener(ctx, ln) }()
	return "http://" + ln.Addr().String(), g, seen, log, cancel, done
}

// startStream opens a stream through the proxy and reads its first event.
func startStream(t *testing.T, base string) *stream.Decoder {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/messages", bytes.NewReader(messagesBody(t, true, nil)))
	require.NoError(t, err)
	req.Header = keyHeader()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, 200, resp.StatusCode)
	dec := stream.NewDecoder(resp.Body)
	require.True(t, dec.Next())
	require.Equal(t, "message_start", dec.Event().Name)
	return dec
}

// Shutdown waits for the stream in flight, which then completes.
func TestServeFinishesStreamsOnShutdown(t *testing.T) {
	base, g, _, log, cancel, done := servedProxy(t, time.Minute)
	dec := startStream(t, base)

	cancel()
	<-log.seen // shutdown has begun while the stream is held by the emulator
	close(g.open)
	names := []string{"message_start"}
	for dec.Next() {
		names = append(names, dec.Event().Name)
	}
	require.NoError(t, dec.Err())
	assert.Equal(t, "message_stop", names[len(names)-1])
	require.NoError(t, <-done)

	_, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	assert.Error(t, err, "no longer listening")
}

// A stream still open when the grace period ends is cut, and its upstream
// request cancelled.
func TestServeShutdownIsBounded(t *testing.T) {
	base, _, seen, _, cancel, done := servedProxy(t, 10*time.Millisecond)
	dec := startStream(t, base)

	cancel()
	err := <-done
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	<-seen.finished // the gate never opened: the upstream stream was cancelled
	for dec.Next() {
		assert.NotEqual(t, "message_stop", dec.Event().Name)
	}
}

func TestListenAndIsLoopback(t *testing.T) {
	ln, err := proxy.Listen(":0")
	require.NoError(t, err)
	defer ln.Close()
	assert.True(t, ln.Addr().(*net.TCPAddr).IP.IsLoopback(), "bare :PORT binds loopback")

	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8787", true},
		{"localhost:8787", true},
		{"[::1]:8787", true},
		{":8787", true},
		{"0.0.0.0:8787", false},
		{"192.168.1.5:8787", false},
		{"example.com:8787", false},
		{"nonsense", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, proxy.IsLoopback(tt.addr), tt.addr)
	}
}
