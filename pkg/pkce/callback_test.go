package pkce

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testState = "state-123"

func startCallback(t *testing.T) *CallbackServer {
	t.Helper()
	srv, err := ListenCallback(context.Background(), 0, testState)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// hit sends a request to the callback server and returns status and body.
func hit(t *testing.T, srv *CallbackServer, method, pathAndQuery string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.Addr().String()+pathAndQuery, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func finished(srv *CallbackServer) bool {
	select {
	case <-srv.done:
		return true
	default:
		return false
	}
}

func TestCallbackRejectsAndKeepsWaiting(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string
	}{
		{name: "root 404", method: "GET", target: "/", wantStatus: 404},
		{name: "other path 404", method: "GET", target: "/favicon.ico", wantStatus: 404},
		{name: "sub path 404", method: "GET", target: "/callback/x?code=c&state=" + testState, wantStatus: 404},
		{name: "post 405", method: "POST", target: "/callback?code=c&state=" + testState, wantStatus: 405},
		{name: "missing code", method: "GET", target: "/callback?state=" + testState, wantStatus: 400, wantBody: "missing the code or state"},
		{name: "missing state", method: "GET", target: "/callback?code=c", wantStatus: 400, wantBody: "missing the code or state"},
		{name: "wrong state", method: "GET", target: "/callback?code=c&state=other", wantStatus: 400, wantBody: "does not match"},
		{name: "provider error with foreign state", method: "GET", target: "/callback?error=access_denied&state=other", wantStatus: 400, wantBody: "does not match"},
		// Any page can make the browser load this (an <img>): without our state it is ignored.
		{name: "provider error without state", method: "GET", target: "/callback?error=access_denied", wantStatus: 400, wantBody: "does not match"},
		{name: "provider error with empty state", method: "GET", target: "/callback?error=access_denied&state=", wantStatus: 400, wantBody: "does not match"},
		{name: "1 MB query", method: "GET", target: "/callback?code=" + strings.Repeat("a", 1<<20) + "&state=" + testState,
			wantStatus: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startCallback(t)
			status, body := hit(t, srv, tt.method, tt.target)
			assert.Equal(t, tt.wantStatus, status)
			assert.Contains(t, body, tt.wantBody)
			assert.False(t, finished(srv), "a rejected request must not end the login")

			status, body = hit(t, srv, "GET", "/callback?code=good-code&state="+testState)
			assert.Equal(t, 200, status)
			assert.Contains(t, body, "return to the terminal")
			code, err := srv.Wait(context.Background())
			require.NoError(t, err)
			assert.Equal(t, "good-code", code)
		})
	}
}

func TestCallbackProviderError(t *testing.T) {
	tests := []struct {
		name  string
		state string
	}{
		{name: "with our state", state: "&state=" + testState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startCallback(t)
			q := url.Values{"error": {"<script>alert(1)</script>"}, "error_description": {`<img src=x onerror="x">`}}
			status, body := hit(t, srv, "GET", "/callback?"+q.Encode()+tt.state)
			assert.Equal(t, 200, status)
			assert.NotContains(t, body, "<script>")
			assert.NotContains(t, body, "<img")
			assert.Contains(t, body, "&lt;script&gt;alert(1)&lt;/script&gt;")
			assert.Contains(t, body, "Login failed")

			_, err := srv.Wait(context.Background())
			require.ErrorIs(t, err, ErrAccessDenied)
			var aerr *AuthorizeError
			require.ErrorAs(t, err, &aerr)
			assert.Equal(t, "<script>alert(1)</script>", aerr.Code)
			assert.Equal(t, `<img src=x onerror="x">`, aerr.Description)

			// The login is over: a late good callback does not change the outcome.
			status, _ = hit(t, srv, "GET", "/callback?code=c&state="+testState)
			assert.Equal(t, 400, status)
			_, err = srv.Wait(context.Background())
			assert.ErrorIs(t, err, ErrAccessDenied)
		})
	}
}

func TestCallbackPageHeaders(t *testing.T) {
	srv := startCallback(t)
	resp, err := http.Get("http://" + srv.Addr().String() + "/callback?code=c&state=" + testState)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
}

func TestCallbackAddress(t *testing.T) {
	srv := startCallback(t)
	addr, ok := srv.Addr().(*net.TCPAddr)
	require.True(t, ok)
	assert.True(t, addr.IP.Equal(net.IPv4(127, 0, 0, 1)), "bound to %s", addr.IP)
	assert.NotZero(t, addr.Port)
	assert.Equal(t, fmt.Sprintf("http://localhost:%d/callback", addr.Port), srv.RedirectURI())
}

// The redirect URI says "localhost": the server answers on 127.0.0.1 and, when
// the host has one, on the IPv6 loopback at the same port, and nowhere else.
func TestCallbackBindsBothLoopbacks(t *testing.T) {
	srv := startCallback(t)
	port := srv.Addr().(*net.TCPAddr).Port
	addrs := srv.Addrs()
	require.NotEmpty(t, addrs)
	for _, a := range addrs {
		ta := a.(*net.TCPAddr)
		assert.True(t, ta.IP.IsLoopback(), "bound to %s", a)
		assert.Equal(t, port, ta.Port)
	}
	if !hasIPv6Loopback(t) {
		assert.Len(t, addrs, 1, "no ::1 here: IPv4 only")
		return
	}
	require.Len(t, addrs, 2)
	assert.True(t, addrs[1].(*net.TCPAddr).IP.Equal(net.IPv6loopback))
	resp, err := http.Get(fmt.Sprintf("http://[::1]:%d/callback?code=v6-code&state=%s", port, testState))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	code, err := srv.Wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "v6-code", code)
}

// A fixed port taken on ::1 only is busy too: the browser may go there.
func TestCallbackBusyPortIPv6(t *testing.T) {
	if !hasIPv6Loopback(t) {
		t.Skip("no IPv6 loopback on this host")
	}
	ln, err := net.Listen("tcp6", "[::1]:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = ListenCallback(context.Background(), ln.Addr().(*net.TCPAddr).Port, testState)
	assert.ErrorIs(t, err, ErrPortBusy)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
}

func hasIPv6Loopback(t *testing.T) bool {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func TestCallbackBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = ListenCallback(context.Background(), ln.Addr().(*net.TCPAddr).Port, testState)
	assert.ErrorIs(t, err, ErrPortBusy)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
}

func TestCallbackWaitTimeoutAndClose(t *testing.T) {
	srv := startCallback(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := srv.Wait(ctx)
	assert.ErrorIs(t, err, ErrTimeout)

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = srv.Wait(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrTimeout)

	addr := srv.Addr().String()
	require.NoError(t, srv.Close())
	_, err = http.Get("http://" + addr + "/callback")
	assert.Error(t, err, "server must be gone after Close")
}
