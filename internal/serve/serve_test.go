package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenDefaultsToLoopback(t *testing.T) {
	for _, addr := range []string{"", ":0", "127.0.0.1:0"} {
		t.Run(addr, func(t *testing.T) {
			ln, err := Listen(addr, "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			ip := ln.Addr().(*net.TCPAddr).IP
			assert.True(t, ip.IsLoopback(), "bound to %s", ip)
		})
	}
	_, err := Listen("127.0.0.1:notaport", "")
	assert.ErrorContains(t, err, "listen")
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8787": true, ":8787": true, "localhost:1": true, "[::1]:1": true,
		"0.0.0.0:8787": false, "192.0.2.1:80": false, "nonsense": false,
	} {
		assert.Equal(t, want, IsLoopback(addr), addr)
	}
}

// slowHandler writes one line, waits for release (or the request to end),
// then writes "done".
func slowHandler(started chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start\n")
		w.(http.Flusher).Flush()
		close(started)
		select {
		case <-release:
			io.WriteString(w, "done\n")
		case <-r.Context().Done():
		}
	})
}

func TestRunShutdown(t *testing.T) {
	tests := []struct {
		name   string
		finish bool
		want   string
	}{
		{"finish lets the stream end", true, "start\ndone\n"},
		{"cancel cuts the stream", false, "start\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := Listen("", "127.0.0.1:0")
			require.NoError(t, err)
			started, release := make(chan struct{}), make(chan struct{})
			ctx, stop := context.WithCancel(context.Background())
			shutting := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, ln, slowHandler(started, release), Options{
					Grace: 10 * time.Second, Finish: tt.finish, OnShutdown: func() { close(shutting) },
				})
			}()
			resp, err := http.Get("http://" + ln.Addr().String())
			require.NoError(t, err)
			defer resp.Body.Close()
			<-started
			stop()
			<-shutting
			if tt.finish {
				close(release) // the handler may end now; shutdown waits for it
			}
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tt.want, string(body))
			require.NoError(t, <-done)
			if !tt.finish {
				close(release)
			}
		})
	}
}

func TestAnnounce(t *testing.T) {
	ln, err := Listen("", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var b strings.Builder
	require.NoError(t, Announce(&b, ln))
	assert.Equal(t, "listening on http://"+ln.Addr().String()+"\n", b.String())
}
