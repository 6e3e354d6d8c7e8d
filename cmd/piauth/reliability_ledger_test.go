package main

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/ledger"
	"github.com/piauth/piauth/pkg/stream"
)

// ledgerRelScenario: the proxy's key and the chats' key get different
// usage; every stream event is delayed so the streams overlap.
const ledgerRelScenario = `{"tokens": [
  {"contains": "ledger-proxy", "reply": {"text": "via the proxy", "deltas": 5, "event_delay_ms": 20,
    "usage": {"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 1000, "cache_creation_1h": 7}}},
  {"contains": "ledger-chat", "reply": {"text": "from chat", "deltas": 5, "event_delay_ms": 5,
    "usage": {"input_tokens": 3, "output_tokens": 2, "cache_creation_5m": 5}}}
]}`

// A real `piauth proxy` under 50 concurrent streams while 8 `piauth chat`
// processes run, all writing one ledger: no row is lost, and the sums are
// what the emulator sent.
func TestReliabilityLedgerConcurrentWriters(t *testing.T) {
	streams, chats := 50, 8
	sc, err := emulator.ParseScenario([]byte(ledgerRelScenario))
	require.NoError(t, err)
	up := httptest.NewServer(emulator.New(emulator.Options{Scenario: sc}))
	t.Cleanup(up.Close)
	state := t.TempDir()
	env := map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": state}

	login := func(tok string) string {
		dir := t.TempDir()
		store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
		require.NoError(t, err)
		require.NoError(t, store.UpdateAuth(context.Background(), func(*keystore.Credential) (*keystore.Credential, error) {
			return &keystore.Credential{Type: "oauth", Access: tok, Refresh: "sk-ant-ort01-ledger-rel",
				Expires: time.Now().Add(time.Hour).UnixMilli()}, nil
		}))
		return dir
	}
	proxyTok, chatTok := chatToken("ledger-proxy"), chatToken("ledger-chat")
	proxyDir, chatDir := login(proxyTok), login(chatTok)

	px := startProxy(t, proxyDir, env, "ledger", "--addr", "127.0.0.1:0", "--no-auth")
	cmd, base, stderr := px.cmd, px.base, px.stderr

	var wg sync.WaitGroup
	errs := make(chan string, streams+chats)
	body := `{"model":"claude-sonnet-5-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for range streams {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(body))
			req.Header.Set("content-type", "application/json")
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set("user-agent", "ledger-test/1.0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			dec := stream.NewDecoder(resp.Body)
			last := ""
			for dec.Next() {
				last = dec.Event().Name
			}
			if resp.StatusCode != 200 || last != "message_stop" {
				errs <- "proxy stream: status " + resp.Status + ", last event " + last
			}
		})
	}
	for range chats {
		wg.Go(func() {
			p := relRun(t, env, "", "--dir", chatDir, "--keyring", "off", "chat", "--stream", "hello")
			if p.code != 0 || p.out != "from chat\n" {
				errs <- "chat: exit " + p.err
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "proxy stderr: %s", stderr)
	<-stderr.done
	assert.NotContains(t, stderr.String(), "dropped")

	// The chats spooled their rows; opening the ledger imports them.
	led, err := ledger.Open(context.Background(), filepath.Join(state, ledger.FileName), ledger.Options{})
	require.NoError(t, err)
	require.NoError(t, led.Close())
	db, err := sql.Open("sqlite", filepath.Join(state, ledger.FileName))
	require.NoError(t, err)
	defer db.Close()
	counts := map[string]int{}
	rows, err := db.Query("SELECT fingerprint, client, count(*), sum(input_tokens), sum(output_tokens)," +
		" sum(cache_read_tokens), sum(cache_write_5m_tokens), sum(cache_write_1h_tokens) FROM requests GROUP BY 1, 2")
	require.NoError(t, err)
	defer rows.Close()
	total := 0
	for rows.Next() {
		var fp, client string
		var n int
		var in, out, cr, w5, w1 int64
		require.NoError(t, rows.Scan(&fp, &client, &n, &in, &out, &cr, &w5, &w1))
		counts[fp+" "+client] = n
		total += n
		switch fp {
		case keystore.Fingerprint(proxyTok):
			assert.Equal(t, []int64{100, 10, 1000, 0, 7}, []int64{in / int64(n), out / int64(n), cr / int64(n), w5, w1 / int64(n)})
		case keystore.Fingerprint(chatTok):
			assert.Equal(t, []int64{3, 2, 0, 5, 0}, []int64{in / int64(n), out / int64(n), cr, w5 / int64(n), w1})
		}
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]int{
		keystore.Fingerprint(proxyTok) + " ledger-test":  streams,
		keystore.Fingerprint(chatTok) + " " + chatClient: chats,
	}, counts)
	lost := streams + chats - total
	relResult(t, "ledger_rows_lost", lost)
	assert.Zero(t, lost)
}

// A real `piauth proxy` with a corrupt ledger warns once at start and
// answers every request; the file is left as it was.
func TestLedgerProxyCorruptDatabase(t *testing.T) {
	sc, err := emulator.ParseScenario([]byte(ledgerRelScenario))
	require.NoError(t, err)
	up := httptest.NewServer(emulator.New(emulator.Options{Scenario: sc}))
	t.Cleanup(up.Close)
	state := t.TempDir()
	garbage := []byte(strings.Repeat("garbage, not SQLite\n", 200))
	path := filepath.Join(state, ledger.FileName)
	require.NoError(t, os.WriteFile(path, garbage, 0o600))
	dir := t.TempDir()
	store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	require.NoError(t, store.UpdateAuth(context.Background(), func(*keystore.Credential) (*keystore.Credential, error) {
		return &keystore.Credential{Type: "oauth", Access: chatToken("ledger-proxy"), Refresh: "sk-ant-ort01-ledger-rel",
			Expires: time.Now().Add(time.Hour).UnixMilli()}, nil
	}))

	px := startProxy(t, dir, map[string]string{"PIAUTH_BASE_URL": up.URL, "PIAUTH_STATE_DIR": state}, "ledger", "--addr", "127.0.0.1:0", "--no-auth")
	cmd, base, stderr := px.cmd, px.base, px.stderr
	for range 3 {
		resp, err := http.Post(base+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"claude-sonnet-5-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait())
	<-stderr.done
	assert.Equal(t, 1, strings.Count(stderr.String(), "warning: ledger"), stderr.String())
	assert.Contains(t, stderr.String(), "not a database")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, garbage, data)
}
