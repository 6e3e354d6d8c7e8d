package proxy_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/ledger"
	"github.com/piauth/piauth/pkg/proxy"
)

// entries is a proxy.Ledger that hands every entry to a channel.
type entries chan ledger.Entry

func (c entries) Record(_ context.Context, e ledger.Entry) { c <- e }

func (c entries) next(t *testing.T) (ledger.Entry, bool) {
	t.Helper()
	select {
	case e := <-c:
		return e, true
	case <-time.After(5 * time.Second):
		return ledger.Entry{}, false
	}
}

const ledgerUsageScenario = `{"reply": {"text": "hello", "usage": {"input_tokens": 40, "output_tokens": 9,
  "cache_read_input_tokens": 300, "cache_creation_5m": 20, "cache_creation_1h": 10}},
  "tokens": [{"contains": "busy", "outcomes": [{"status": 529, "type": "overloaded_error", "message": "Overloaded"}]}]}`

// Every Messages request that went upstream is one entry with the key's
// fingerprint (never the token), the model, status, tokens by kind, the
// request id and the client's user-agent family; other requests are none.
func TestProxyLedgerEntries(t *testing.T) {
	sc, err := emulator.ParseScenario([]byte(ledgerUsageScenario))
	require.NoError(t, err)
	want := ledger.Tokens{Input: 40, Output: 9, CacheWrite5m: 20, CacheWrite1h: 10, CacheRead: 300}
	tests := []struct {
		name     string
		tok      string
		path     string
		streamed bool
		header   http.Header
		entry    bool
		status   int
		errType  string
		tokens   ledger.Tokens
	}{
		{"stream", fakeToken("ok"), "/v1/messages", true, keyHeader(), true, 200, "", want},
		{"json", fakeToken("ok"), "/v1/messages", false, keyHeader(), true, 200, "", want},
		{"upstream error", fakeToken("busy"), "/v1/messages", true, keyHeader(), true, 529, "overloaded_error", ledger.Tokens{}},
		{"count_tokens", fakeToken("ok"), "/v1/messages/count_tokens", false, keyHeader(), false, 0, "", ledger.Tokens{}},
		{"wrong client key", fakeToken("ok"), "/v1/messages", true, http.Header{"X-Api-Key": {"nope"}}, false, 0, "", ledger.Tokens{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(entries, 4)
			e := newEnv(t, emulator.Options{Scenario: sc}, tt.tok, proxy.Options{ClientKey: clientKey(), Ledger: got})
			h := tt.header.Clone()
			h.Set("User-Agent", "Anthropic/Python 0.49.0")
			resp := post(t, e.proxy.URL, tt.path, h, messagesBody(t, tt.streamed, nil))
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !tt.entry {
				select {
				case en := <-got:
					t.Fatalf("unexpected entry %+v", en)
				case <-time.After(100 * time.Millisecond):
				}
				return
			}
			en, ok := got.next(t)
			require.True(t, ok, "no entry")
			assert.Equal(t, secret.Fingerprint(tt.tok), en.Fingerprint)
			assert.Equal(t, "claude-sonnet-5-5", en.Model)
			assert.Equal(t, tt.status, en.Status)
			assert.Equal(t, tt.errType, en.ErrorType)
			assert.Equal(t, tt.streamed && tt.status == 200, en.Stream, "an error answer is not a stream")
			assert.Equal(t, tt.tokens, en.Tokens)
			assert.Equal(t, "anthropic/python", en.Client)
			assert.Equal(t, resp.Header.Get("Request-Id"), en.RequestID)
			assert.NotEmpty(t, en.RequestID)
			assert.Positive(t, en.Latency)
		})
	}
}

// The proxy through a real ledger.Writer: the rows land in the database.
func TestProxyLedgerWriter(t *testing.T) {
	sc, err := emulator.ParseScenario([]byte(ledgerUsageScenario))
	require.NoError(t, err)
	db, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), ledger.FileName), ledger.Options{})
	require.NoError(t, err)
	defer db.Close()
	w := ledger.NewWriter(db, ledger.WriterOptions{})
	e := newEnv(t, emulator.Options{Scenario: sc}, fakeToken("ok"), proxy.Options{ClientKey: clientKey(), Ledger: w})
	const n = 20
	for range n {
		resp := post(t, e.proxy.URL, "/v1/messages", keyHeader(), messagesBody(t, true, nil))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	e.proxy.Close() // waits for the handlers, so every entry is queued
	require.NoError(t, w.Close(context.Background()))
	rep, err := db.Report(context.Background(), ledger.ReportOptions{By: ledger.ByKey})
	require.NoError(t, err)
	assert.EqualValues(t, n, rep.Totals.Requests)
	assert.Equal(t, ledger.Tokens{Input: 40 * n, Output: 9 * n, CacheWrite5m: 20 * n, CacheWrite1h: 10 * n, CacheRead: 300 * n}, rep.Totals.Tokens)
}
