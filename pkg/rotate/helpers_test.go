package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// fakeTok builds a fake token at runtime: kind "oat" or "api", a marker the
// emulator reacts to, and a distinct tail.
func fakeTok(kind, marker string) string {
	return "sk-ant-" + kind + "01-" + marker + "-" + strings.Repeat("x", 8) + "-test"
}

// fakeClock is a settable clock shared by the emulator and the transport.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 28, 17, 54, 10, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// emu starts an emulator with scenario (JSON, "" for none).
func emu(t *testing.T, scenario string, now func() time.Time) (*emulator.Emulator, string) {
	t.Helper()
	opts := emulator.Options{Now: now}
	if scenario != "" {
		sc, err := emulator.ParseScenario([]byte(scenario))
		require.NoError(t, err)
		opts.Scenario = sc
	}
	e := emulator.New(opts)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, srv.URL
}

// openStore opens a Store on dir without the OS keyring.
func openStore(t *testing.T, dir string, now func() time.Time) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff, Now: now})
	require.NoError(t, err)
	return s
}

// seedPool writes keys (with optional states) into the store's pool.
func seedPool(t *testing.T, s *keystore.Store, keys []string, states map[string]keystore.KeyState) {
	t.Helper()
	_, err := s.UpdatePool(context.Background(), func(p *keystore.Pool) error {
		for _, k := range keys {
			p.Add(k, states[k])
		}
		return nil
	})
	require.NoError(t, err)
}

// chatBody is a small Messages request.
func chatBody(t *testing.T, streaming bool) []byte {
	t.Helper()
	b, err := stream.Params{Model: "claude-sonnet-5-5", MaxTokens: 256, Stream: streaming,
		Messages: []json.RawMessage{stream.UserMessage("hi")}}.Body()
	require.NoError(t, err)
	return b
}

// result is what one chat request produced.
type result struct {
	text string
	err  error // request error, or the stream's error
	msg  *stream.Message
}

// chat sends one streaming request through tr and reads the whole answer.
func chat(t *testing.T, tr http.RoundTripper, baseURL string) result {
	t.Helper()
	req, err := stream.NewRequest(context.Background(), baseURL, chatBody(t, true))
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return result{err: err}
	}
	if err := stream.CheckResponse(resp); err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	var text bytes.Buffer
	msg, err := stream.ReadMessage(resp.Body, nil, func(d stream.Delta) error {
		text.Write(d.Text)
		return nil
	})
	return result{text: text.String(), err: err, msg: msg}
}

// counts returns how many Messages requests the emulator saw per key.
func counts(e *emulator.Emulator, keys ...string) []int64 {
	st := e.Stats()
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = st.Tokens[keystore.Fingerprint(k)]
	}
	return out
}
