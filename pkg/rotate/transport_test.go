package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/pkce"
	"github.com/piauth/piauth/pkg/stream"
)

func TestRotateOnRateLimit(t *testing.T) {
	tests := []struct {
		name string
		send func(t *testing.T, tr http.RoundTripper, url string) error
	}{
		{"stream", func(t *testing.T, tr http.RoundTripper, url string) error {
			r := chat(t, tr, url)
			if r.err == nil {
				assert.Equal(t, emulator.DefaultText, r.text)
			}
			return r.err
		}},
		{"json without GetBody", func(t *testing.T, tr http.RoundTripper, url string) error {
			// A proxied request: its body can be read only once.
			req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", io.NopCloser(bytes.NewReader(chatBody(t, false))))
			require.NoError(t, err)
			require.Nil(t, req.GetBody)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				return err
			}
			if err := stream.CheckResponse(resp); err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			assert.Contains(t, string(b), emulator.DefaultText)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			e, url := emu(t, "", clk.Now)
			dir := t.TempDir()
			keys := []string{fakeTok("oat", "ratelimited"), fakeTok("oat", "second"), fakeTok("oat", "third")}
			seedPool(t, openStore(t, dir, clk.Now), keys, nil)

			var log bytes.Buffer
			var reported []string
			tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log,
				OnKey: func(i, n int, rotated bool) { reported = append(reported, fmt.Sprint(i, n, rotated)) }}
			require.NoError(t, tt.send(t, tr, url))
			assert.Equal(t, []int64{1, 1, 0}, counts(e, keys...), "exactly 2 requests")
			assert.Equal(t, "🔑 key 1/3 ("+keystore.Mask(keys[0])+") cooling until 18:04:10 (in 10m), rate-limited; trying key 2/3\n", log.String())
			assert.Equal(t, "🔑 2/3 (rotated)", tr.KeyLabel())
			assert.Equal(t, []string{"2 3 true"}, reported)

			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			assert.Equal(t, keys, p.Keys)
			assert.Equal(t, 1, p.Active)
			assert.True(t, p.Rotated)
			st := p.State(0)
			assert.True(t, clk.Now().Add(600*time.Second).Equal(st.CooldownUntil), "retry-after honoured: %v", st.CooldownUntil)
			assert.Equal(t, "rate_limit", st.CooldownReason)
			assert.Equal(t, "rejected", st.UnifiedStatus)
			assert.Equal(t, "allowed", p.State(1).UnifiedStatus)
			assert.InDelta(t, 0.31, p.State(1).Utilization, 1e-9)

			// The next run (a second Store, as another process) reads the
			// cooldown from the file and goes straight to key 2.
			clk.Add(5 * time.Minute)
			log.Reset()
			tr2 := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}
			require.NoError(t, tt.send(t, tr2, url))
			assert.Equal(t, []int64{1, 2, 0}, counts(e, keys...), "1 more request")
			assert.Empty(t, log.String())
			assert.Equal(t, "🔑 2/3", tr2.KeyLabel(), "the rotated mark clears on the next success")
			p, err = openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			assert.False(t, p.Rotated)
			assert.Equal(t, 1, p.Active)
		})
	}
}

func TestNoWriteWhenNothingChanged(t *testing.T) {
	clk := newClock()
	_, url := emu(t, "", clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "one"), fakeTok("oat", "two")}
	s := openStore(t, dir, clk.Now)
	seedPool(t, s, keys, nil)
	tr := &Transport{Source: &Source{Store: s, Now: clk.Now}}
	require.NoError(t, chat(t, tr, url).err) // records the unified status
	before, err := os.Stat(s.PoolPath())
	require.NoError(t, err)
	data, err := os.ReadFile(s.PoolPath())
	require.NoError(t, err)
	require.NoError(t, chat(t, tr, url).err)
	after, err := os.Stat(s.PoolPath())
	require.NoError(t, err)
	again, err := os.ReadFile(s.PoolPath())
	require.NoError(t, err)
	assert.Equal(t, string(data), string(again))
	assert.True(t, os.SameFile(before, after), "the file was not replaced")
	assert.Equal(t, "🔑 1/2", tr.KeyLabel())
}

func TestUnifiedRejectedKeySkipped(t *testing.T) {
	// Key 1 answers, but says its 5-hour window is rejected (no
	// retry-after on a 200): it is not tried again before the window's reset.
	clk := newClock()
	e, url := emu(t, `{"tokens": [{"contains": "drained", "unified": {"status": "rejected", "five_hour": 1.02}}]}`, clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "drained"), fakeTok("oat", "fresh")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)

	tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}
	require.NoError(t, chat(t, tr, url).err)
	p, err := openStore(t, dir, clk.Now).Pool()
	require.NoError(t, err)
	reset := clk.Now().Add(5 * time.Hour).Truncate(time.Hour) // the emulator's 5h window reset
	assert.True(t, reset.Equal(p.State(0).CooldownUntil), "cooling until the unified reset: %v", p.State(0).CooldownUntil)
	assert.Equal(t, "rejected", p.State(0).UnifiedStatus)
	assert.InDelta(t, 1.02, p.State(0).Utilization, 1e-9)

	tr = &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}
	require.NoError(t, chat(t, tr, url).err)
	assert.Equal(t, []int64{1, 1}, counts(e, keys...))
	assert.Equal(t, "🔑 2/2", tr.KeyLabel())
}

func TestPreferLowestUtilisation(t *testing.T) {
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "ratelimited"), fakeTok("oat", "busy"), fakeTok("oat", "idle"), fakeTok("oat", "mid")}
	seedPool(t, openStore(t, dir, clk.Now), keys, map[string]keystore.KeyState{
		keys[1]: {Utilization: 0.9},
		keys[2]: {Utilization: 0.1},
		keys[3]: {Utilization: 0.5},
	})
	var log bytes.Buffer
	tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}
	require.NoError(t, chat(t, tr, url).err)
	assert.Equal(t, []int64{1, 0, 1, 0}, counts(e, keys...))
	assert.Contains(t, log.String(), "trying key 3/4")
	assert.Equal(t, "🔑 3/4 (rotated)", tr.KeyLabel())
}

func TestMidstream(t *testing.T) {
	clk := newClock()
	e, url := emu(t, `{"tokens": [
		{"contains": "early", "outcomes": [{"status": 200, "midstream_early": true}]},
		{"contains": "late", "outcomes": [{"status": 200, "midstream": true}]}]}`, clk.Now)
	tests := []struct {
		name      string
		first     string
		wantCount []int64
		wantErr   bool
		wantLog   string
	}{
		{"error before output is retried", fakeTok("oat", "early"), []int64{1, 1}, false,
			"🔑 key 1/2 (" + keystore.Mask(fakeTok("oat", "early")) + ") cooling until 17:54:40 (in 30s), overloaded; trying key 2/2\n"},
		{"error after output is reported", fakeTok("oat", "late"), []int64{1, 0}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keys := []string{tt.first, fakeTok("oat", "steady"+tt.first[14:18])}
			seedPool(t, openStore(t, dir, clk.Now), keys, nil)
			var log bytes.Buffer
			tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}
			r := chat(t, tr, url)
			assert.Equal(t, tt.wantCount, counts(e, keys...))
			assert.Equal(t, tt.wantLog, log.String())
			// Either way the text arrived exactly once.
			assert.Equal(t, emulator.DefaultText, r.text)
			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			if tt.wantErr {
				var se *stream.StreamError
				require.ErrorAs(t, r.err, &se)
				assert.Equal(t, "overloaded_error", se.Type)
				assert.True(t, p.State(0).CooldownUntil.IsZero(), "no cooldown after output started")
				return
			}
			require.NoError(t, r.err)
			assert.Equal(t, "end_turn", r.msg.StopReason)
			assert.True(t, clk.Now().Add(30*time.Second).Equal(p.State(0).CooldownUntil))
			assert.Equal(t, "overloaded", p.State(0).CooldownReason)
		})
	}
}

func TestPeekReplaysEveryByte(t *testing.T) {
	ev := func(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }
	big := strings.Repeat("y", 100_000) // beyond any read buffer
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"whole stream", ev("message_start", `{"type":"message_start"}`) + ev("ping", `{}`) +
			ev("content_block_start", `{"index":0,"content_block":{"type":"text","text":""}}`) +
			ev("content_block_delta", `{"index":0,"delta":{"type":"text_delta","text":"`+big+`"}}`) +
			ev("message_stop", `{}`), ""},
		{"content in block start", ev("content_block_start", `{"index":0,"content_block":{"type":"tool_use","name":"Read"}}`) +
			ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), ""},
		{"non-rotating error", ev("message_start", `{}`) + ev("error", `{"type":"error","error":{"type":"api_error","message":"boom"}}`) + big, ""},
		{"crlf and no final blank line", strings.ReplaceAll(ev("message_start", `{}`), "\n", "\r\n") + "event: content_block_delta\r\ndata: {}", ""},
		{"early overload", ev("message_start", `{}`) + ev("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "overloaded_error"},
		{"early rate limit", ev("error", `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`), "rate_limit_error"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}},
				Body: io.NopCloser(strings.NewReader(tt.body))}
			got, err := peek(resp)
			if tt.wantErr != "" {
				var se *stream.StreamError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tt.wantErr, se.Type)
				return
			}
			require.NoError(t, err)
			b, err := io.ReadAll(got.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.body, string(b))
			require.NoError(t, got.Body.Close())
		})
	}
}

// tokenRefresher is the real pkce.Refresher pointed at the emulator.
func tokenRefresher(s *keystore.Store, url string, now func() time.Time) *pkce.Refresher {
	return &pkce.Refresher{Store: s, OAuth: &pkce.Config{TokenEndpoint: url + "/v1/oauth/token", Now: now}, Now: now}
}

func TestAuthFailure(t *testing.T) {
	tests := []struct {
		name        string
		state       keystore.KeyState
		refresher   bool
		wantRefresh bool   // the key was refreshed and answered
		wantFirst   int64  // requests sent with the first key's original token
		wantLog     string // expected fragment
	}{
		{"expired OAuth key is refreshed before use, not evicted", keystore.KeyState{Refresh: fakeTok("ort", "seeded"), Expires: 1}, true, true, 0, ""},
		{"refused OAuth key is refreshed and retried", keystore.KeyState{Refresh: fakeTok("ort", "seeded")}, true, true, 1, "🔑 refreshed: key 1/2"},
		{"revoked refresh token: needs re-login", keystore.KeyState{Refresh: fakeTok("ort", "invalid")}, true, false, 1,
			"🔑 needs re-login: key 1/2 (" + keystore.Mask(fakeTok("oat", "invalid")) + ") was refused (HTTP 401 authentication_error) and its refresh failed: "},
		{"expired with a revoked refresh token: needs re-login unsent", keystore.KeyState{Refresh: fakeTok("ort", "invalid"), Expires: 1}, true, false, 0,
			"🔑 needs re-login: key 1/2 (" + keystore.Mask(fakeTok("oat", "invalid")) + ") expired and its refresh failed: "},
		{"no refresh token: needs re-login", keystore.KeyState{}, true, false, 1, "key cannot be refreshed"},
		{"no refresher: needs re-login", keystore.KeyState{Refresh: fakeTok("ort", "unused")}, false, false, 1,
			"🔑 needs re-login: key 1/2 (" + keystore.Mask(fakeTok("oat", "invalid")) + ") was refused (HTTP 401 authentication_error); `piauth login --add-to-pool`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			e, url := emu(t, "", clk.Now)
			dir := t.TempDir()
			keys := []string{fakeTok("oat", "invalid"), fakeTok("oat", "spare")}
			seedPool(t, openStore(t, dir, clk.Now), keys, map[string]keystore.KeyState{keys[0]: tt.state})
			var log bytes.Buffer
			s := openStore(t, dir, clk.Now)
			tr := &Transport{Source: &Source{Store: s, Now: clk.Now}, Log: &log}
			if tt.refresher {
				tr.Source.Refresher = tokenRefresher(s, url, clk.Now)
			}
			r := chat(t, tr, url)
			require.NoError(t, r.err)
			assert.Equal(t, emulator.DefaultText, r.text)
			assert.Contains(t, log.String(), tt.wantLog)
			assert.NotContains(t, log.String(), keys[0], "the key is masked")

			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			require.Len(t, p.Keys, 2, "an OAuth key is never evicted")
			assert.Equal(t, keys[1], p.Keys[1])
			if tt.wantRefresh {
				assert.NotEqual(t, keys[0], p.Keys[0], "replaced by the refreshed token")
				assert.False(t, p.State(0).NeedsReauth)
				assert.Equal(t, []int64{tt.wantFirst, 0}, counts(e, keys...))
				assert.Equal(t, int64(1), counts(e, p.Keys[0])[0], "the new token answered")
				assert.Equal(t, int64(1), e.Stats().Refreshes)
				assert.Equal(t, "🔑 1/2", tr.KeyLabel())
				return
			}
			assert.Equal(t, keys[0], p.Keys[0])
			assert.True(t, p.State(0).NeedsReauth)
			assert.Equal(t, []int64{tt.wantFirst, 1}, counts(e, keys...))
			assert.Equal(t, "🔑 2/2", tr.KeyLabel())

			// Later runs skip it without a request.
			tr = &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}
			require.NoError(t, chat(t, tr, url).err)
			assert.Equal(t, []int64{tt.wantFirst, 2}, counts(e, keys...))
		})
	}
}

func TestAPIKeyRevokedKeptInFileAndKeyring(t *testing.T) {
	// The seed deletes a refused API key; piauth keeps it (file and real
	// keyring) as revoked, skips it, and `key prune` deletes it later.
	svc := testenv.KeyringService(t)
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	dir := t.TempDir()
	open := func() *keystore.Store {
		s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOn, Service: svc, Now: clk.Now})
		require.NoError(t, err)
		return s
	}
	keys := []string{fakeTok("api", "invalid"), fakeTok("oat", "good")}
	seedPool(t, open(), keys, nil)
	kr := keystore.NewOSKeyring(svc, 0)
	_, err := kr.Get("key:" + keystore.Fingerprint(keys[0]))
	require.NoError(t, err, "the key is mirrored in the real keyring")

	var log bytes.Buffer
	tr := &Transport{Source: &Source{Store: open(), Now: clk.Now}, Log: &log}
	require.NoError(t, chat(t, tr, url).err)
	assert.Equal(t, []int64{1, 1}, counts(e, keys...))
	assert.Equal(t, "🔑 revoked: key 1/2 ("+keystore.Mask(keys[0])+") was refused (HTTP 401 authentication_error); skipped from now on, kept in the file and the keyring (`piauth key prune` deletes revoked keys, `piauth key reset --revoked` brings them back)\n", log.String())
	assert.Equal(t, "🔑 2/2", tr.KeyLabel())

	p, err := open().Pool()
	require.NoError(t, err)
	assert.Equal(t, keys, p.Keys, "nothing is deleted")
	assert.Equal(t, keystore.StateRevoked, p.Status(0, clk.Now()).State)
	for _, k := range keys {
		_, err = kr.Get("key:" + keystore.Fingerprint(k))
		assert.NoError(t, err, "kept in the real keyring")
	}

	// The next request skips the revoked key without a request.
	require.NoError(t, chat(t, &Transport{Source: &Source{Store: open(), Now: clk.Now}}, url).err)
	assert.Equal(t, []int64{1, 2}, counts(e, keys...))
}

func TestUpstreamRefusingEveryKeyChangesNothing(t *testing.T) {
	// A wrong base URL or a proxy in between answers 401 to every key: the
	// second refused key ends the request and the first one's mark is taken
	// back, so the pool is as it was.
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	tests := []struct {
		name string
		keys []string
	}{
		{"api keys", []string{fakeTok("api", "invalid1"), fakeTok("api", "invalid2"), fakeTok("api", "good")}},
		{"oauth keys without refresh", []string{fakeTok("oat", "invalid1"), fakeTok("oat", "invalid2"), fakeTok("oat", "good")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			seedPool(t, openStore(t, dir, clk.Now), tt.keys, nil)
			before, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
			require.NoError(t, err)
			e.Reset()
			var log bytes.Buffer
			r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}, url)
			var ue *UpstreamRefusedError
			require.ErrorAs(t, r.err, &ue)
			assert.ErrorIs(t, r.err, ErrUpstreamRefused)
			assert.False(t, NeedsLogin(r.err), "not a login problem: exit 1, not 3")
			assert.Equal(t, 2, ue.Keys)
			assert.Contains(t, r.err.Error(), url+" refused 2 different keys (HTTP 401 authentication_error); no key was changed")
			assert.Equal(t, []int64{1, 1, 0}, counts(e, tt.keys...), "the third key is not touched")
			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			assert.Equal(t, tt.keys, p.Keys)
			for i := range tt.keys {
				assert.True(t, p.Status(i, clk.Now()).State.Usable(), "key %d keeps its state", i+1)
			}
			after, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
			require.NoError(t, err)
			var b, a map[string]any
			require.NoError(t, json.Unmarshal(before, &b))
			require.NoError(t, json.Unmarshal(after, &a))
			assert.Equal(t, b["keys"], a["keys"])
		})
	}
}

func TestAllKeysLimited(t *testing.T) {
	clk := newClock()
	e, url := emu(t, `{"tokens": [{"contains": "slowly", "outcomes": [{"status": 429, "retry_after": 300}]}]}`, clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "ratelimited"), fakeTok("oat", "slowly"), fakeTok("oat", "reauth")}
	seedPool(t, openStore(t, dir, clk.Now), keys, map[string]keystore.KeyState{keys[2]: {NeedsReauth: true}})
	var log bytes.Buffer
	tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}
	r := chat(t, tr, url)
	var al *AllLimitedError
	require.ErrorAs(t, r.err, &al)
	assert.ErrorIs(t, r.err, ErrAllKeysLimited)
	assert.Equal(t, 2, al.N)
	assert.True(t, clk.Now().Add(300*time.Second).Equal(al.FreeAt), "first one frees: %v", al.FreeAt)
	assert.Equal(t, "all 2 keys are rate-limited; first one frees at 17:59:10 (in 5m)", al.Error())
	assert.Equal(t, []int64{1, 1, 0}, counts(e, keys...), "one attempt per key, never a loop")
	assert.Contains(t, log.String(), "key 2/3 ("+keystore.Mask(keys[1])+") cooling until 17:59:10 (in 5m), rate-limited; no other key is ready")

	// The next run fails at once, without a request.
	clk.Add(time.Minute)
	r = chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
	require.ErrorAs(t, r.err, &al)
	assert.Equal(t, "all 2 keys are rate-limited; first one frees at 17:59:10 (in 4m)", al.Error())
	assert.Equal(t, []int64{1, 1, 0}, counts(e, keys...))
}

func TestNoUsableKey(t *testing.T) {
	clk := newClock()
	_, url := emu(t, "", clk.Now)
	// An empty pool and no login is "not logged in"; a pool whose every key
	// needs a new login has no usable key. Both mean "log in first".
	for name, keys := range map[string][]string{"empty pool": nil, "all need re-login": {fakeTok("oat", "a"), fakeTok("oat", "b")}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			states := map[string]keystore.KeyState{}
			for _, k := range keys {
				states[k] = keystore.KeyState{NeedsReauth: true}
			}
			seedPool(t, openStore(t, dir, clk.Now), keys, states)
			r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
			if keys == nil {
				assert.ErrorIs(t, r.err, pkce.ErrNotLoggedIn)
			} else {
				assert.ErrorIs(t, r.err, ErrNoUsableKey)
			}
			assert.True(t, NeedsLogin(r.err), "%v", r.err)
			assert.NotErrorIs(t, r.err, ErrAllKeysLimited)
		})
	}
}

func TestWaitForCooldown(t *testing.T) {
	// Real time: both keys answer 429 with retry-after 1, then 200.
	e, url := emu(t, `{"tokens": [
		{"contains": "brief1", "outcomes": [{"status": 429, "retry_after": 1}, {"status": 200}]},
		{"contains": "brief2", "outcomes": [{"status": 429, "retry_after": 1}, {"status": 200}]}]}`, nil)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "brief1"), fakeTok("oat", "brief2")}
	seedPool(t, openStore(t, dir, nil), keys, nil)
	var log bytes.Buffer
	var slept time.Duration
	tr := &Transport{Source: &Source{Store: openStore(t, dir, nil)}, Log: &log, Wait: true,
		Sleep: func(ctx context.Context, d time.Duration) error {
			slept += d
			time.Sleep(d)
			return ctx.Err()
		}}
	r := chat(t, tr, url)
	require.NoError(t, r.err)
	assert.Equal(t, emulator.DefaultText, r.text)
	assert.Contains(t, log.String(), "⏳ all 2 keys are rate-limited; first one frees at ")
	assert.Positive(t, slept)
	assert.LessOrEqual(t, slept, time.Second)
	c := counts(e, keys...)
	assert.Equal(t, int64(3), c[0]+c[1], "two 429s, then one answer")

	// A cancelled wait returns the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.Sleep = nil
	require.NoError(t, os.Remove(filepath.Join(dir, "key-rotation.json")))
	seedPool(t, openStore(t, dir, nil), []string{fakeTok("oat", "ratelimited")}, nil)
	req, err := stream.NewRequest(ctx, url, chatBody(t, true))
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestFatalErrorsAreNotRotated(t *testing.T) {
	clk := newClock()
	e, url := emu(t, `{"tokens": [{"contains": "broken", "outcomes": [{"status": 500}]},
		{"contains": "toolong", "outcomes": [{"status": 400, "message": "prompt is too long"}]}]}`, clk.Now)
	for _, marker := range []string{"broken", "toolong"} {
		t.Run(marker, func(t *testing.T) {
			dir := t.TempDir()
			keys := []string{fakeTok("oat", marker), fakeTok("oat", "other"+marker)}
			seedPool(t, openStore(t, dir, clk.Now), keys, nil)
			r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
			var ae *stream.APIError
			require.ErrorAs(t, r.err, &ae, "the answer reaches the caller as it was")
			assert.Equal(t, []int64{1, 0}, counts(e, keys...))
			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			assert.True(t, p.State(0).CooldownUntil.IsZero())
			assert.Equal(t, 0, p.Active)
		})
	}
}

func TestConcurrentChatsShareState(t *testing.T) {
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "ratelimited"), fakeTok("oat", "b"), fakeTok("oat", "c")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each chat has its own Store, as separate processes would.
			errs[i] = chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url).err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "chat %d", i)
	}
	p, err := openStore(t, dir, clk.Now).Pool() // the file parses
	require.NoError(t, err)
	assert.Equal(t, keys, p.Keys, "no key lost")
	var cooling []int
	for i := range p.Keys {
		if !p.State(i).CooldownUntil.IsZero() {
			cooling = append(cooling, i)
		}
	}
	assert.Equal(t, []int{0}, cooling, "exactly one cooldown recorded")
	assert.True(t, clk.Now().Add(600*time.Second).Equal(p.State(0).CooldownUntil))
	assert.NotEqual(t, 0, p.Active)
	c := counts(e, keys...)
	assert.Equal(t, int64(n), c[1]+c[2], "every chat answered once")
	assert.LessOrEqual(t, c[0], int64(n))
}

func TestNext(t *testing.T) {
	now := newClock().Now()
	later := now.Add(time.Minute)
	a, b, c := fakeTok("oat", "a"), fakeTok("oat", "b"), fakeTok("api", "c")
	pool := func(active int, states map[string]*keystore.KeyState) *keystore.Pool {
		st := map[string]*keystore.KeyState{}
		for k, s := range states {
			st[keystore.Fingerprint(k)] = s
		}
		return &keystore.Pool{Keys: []string{a, b, c}, Active: active, States: st}
	}
	tests := []struct {
		name    string
		pool    *keystore.Pool
		want    int
		wantErr error
	}{
		{"active key", pool(1, nil), 1, nil},
		{"active out of range", pool(7, nil), 0, nil},
		{"active cooling: next ready key", pool(0, map[string]*keystore.KeyState{a: {CooldownUntil: later}}), 1, nil},
		{"expired cooldown is ready", pool(0, map[string]*keystore.KeyState{a: {CooldownUntil: now}}), 0, nil},
		{"lowest utilisation", pool(0, map[string]*keystore.KeyState{a: {NeedsReauth: true}, b: {Utilization: 0.8}, c: {Utilization: 0.2}}), 2, nil},
		{"all cooling", pool(0, map[string]*keystore.KeyState{a: {CooldownUntil: later}, b: {CooldownUntil: later.Add(time.Hour)}, c: {NeedsReauth: true}}), -1, ErrAllKeysLimited},
		{"all need re-login", pool(0, map[string]*keystore.KeyState{a: {NeedsReauth: true}, b: {NeedsReauth: true}, c: {NeedsReauth: true}}), -1, ErrNoUsableKey},
		{"empty", &keystore.Pool{}, -1, ErrNoUsableKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := Next(tt.pool, now)
			assert.Equal(t, tt.want, i)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.wantErr)
			var al *AllLimitedError
			if errors.As(err, &al) {
				assert.Equal(t, 2, al.N)
				assert.Equal(t, later, al.FreeAt)
			}
		})
	}
}
