package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstByteLimit(t *testing.T) {
	addr := testenv.SilentServer(t) // accepts and never answers
	c := New(Limits{Connect: time.Second, FirstByte: 300 * time.Millisecond, SetBy: "PIAUTH_TIMEOUT"})
	start := time.Now()
	_, err := c.Get("http://" + addr + "/v1/messages")
	took := time.Since(start)
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.ErrorIs(t, err, ErrTimeout)
	assert.Contains(t, err.Error(), "no answer from http://"+addr+"/v1/messages within 1s (limit set by PIAUTH_TIMEOUT)")
	assert.Less(t, took, 5*time.Second)
}

func TestIdleLimit(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: ping\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		select { // then silence
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c := New(Limits{FirstByte: time.Second, Idle: 300 * time.Millisecond, SetBy: "--timeout"})
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	assert.Equal(t, "event: ping\ndata: {}\n\n", string(data), "what arrived is kept")
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "no data", te.What)
	assert.Contains(t, err.Error(), "(limit set by --timeout)")
}

func TestNoRedirect(t *testing.T) {
	var stolen atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			stolen.Add(1)
		}
	}))
	t.Cleanup(evil.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		http.Redirect(w, r, evil.URL+"/steal", code)
	}))
	t.Cleanup(srv.Close)
	for _, code := range []int{301, 302, 303, 307, 308} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/messages?code="+strconv.Itoa(code), nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := New(Limits{}).Do(req)
		assert.ErrorIs(t, err, ErrRedirect)
		if resp != nil {
			resp.Body.Close()
		}
	}
	assert.Zero(t, stolen.Load(), "no request reached the redirect's target")
}

func TestHTTPTransport(t *testing.T) {
	c := New(Limits{Connect: time.Second})
	tr := HTTPTransport(c.Transport)
	require.NotNil(t, tr, "New's client: the *http.Transport under its Transport")
	assert.Same(t, c.Transport.(*Transport).Base, tr)
	plain := &http.Transport{}
	assert.Same(t, plain, HTTPTransport(plain))
	assert.Nil(t, HTTPTransport(roundTripFunc(nil)))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
