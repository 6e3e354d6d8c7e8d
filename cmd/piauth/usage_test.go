package main

import (
	"context"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/usage"
)

var updateUsageGolden = flag.Bool("update-usage", false, "rewrite testdata/usage golden files")

// usageScenario scripts three accounts: one at 72 % / 41 %, one whose usage
// endpoint fails, one reporting only limits[] (a per-model weekly cap and
// extra usage), plus an API key.
const usageScenario = `{
  "usage_report": {"five_hour": 72, "seven_day": 41},
  "tokens": [
    {"contains": "bravo", "usage_outcomes": [{"status": 500, "type": "api_error", "message": "Internal server error"}]},
    {"contains": "charlie", "usage_report": {
       "omit_windows": true,
       "limits": [{"kind": "session", "percent": 100, "resets_in": 3600},
                  {"kind": "weekly_scoped", "group": "weekly", "percent": 85, "model": "claude-opus-5-5"},
                  {"kind": "weekly_all", "percent": 41}],
       "extra_usage": {"is_enabled": true, "monthly_limit": 50, "used_credits": 12.5, "utilization": 25}}},
    {"contains": "limited", "usage_outcomes": [{"status": 429, "retry_after": 120}, {"status": 200}]}
  ]
}`

// usageEnv is an agent dir, a state dir and an emulator on a fixed clock.
type usageEnv struct {
	*authEnv
	state string
	clock *time.Time
	keys  []string
}

func newUsageEnv(t *testing.T, scenario string, keys []string, states []keystore.KeyState) *usageEnv {
	t.Helper()
	now := time.Date(2026, 12, 1, 9, 20, 0, 0, time.UTC)
	e := &usageEnv{state: t.TempDir(), clock: &now, keys: keys}
	sc, err := emulator.ParseScenario([]byte(scenario))
	require.NoError(t, err)
	emu := emulator.New(emulator.Options{Scenario: sc, Now: func() time.Time { return *e.clock }})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	e.authEnv = &authEnv{emu: emu, url: srv.URL, dir: t.TempDir()}
	if keys != nil {
		e.seedPool(t, 0, false, keys, states)
	}
	return e
}

// run runs piauth in-process at the env's clock; tty makes stdout a terminal.
func (e *usageEnv) run(t *testing.T, tty bool, args ...string) authRun {
	t.Helper()
	vars := e.vars()
	vars["PIAUTH_STATE_DIR"] = e.state
	f, bufs := newTestFactory("", vars)
	f.IO.OutTTY = tty
	f.Now = func() time.Time { return *e.clock }
	code := run(context.Background(), f, append([]string{"piauth", "--dir", e.dir, "--keyring", "off"}, args...))
	return authRun{code: code, out: bufs.Out.String(), err: bufs.Err.String()}
}

func (e *usageEnv) calls(tok string) int64 {
	return e.emu.Stats().UsageCalls[keystore.Fingerprint(tok)]
}

func threeAccounts() ([]string, []keystore.KeyState) {
	keys := []string{authToken("oat", "alpha"), authToken("oat", "bravo"), authToken("oat", "charlie"), authToken("api", "delta")}
	states := []keystore.KeyState{{Label: "work", Account: "alpha@example.com"}, {Label: "spare"}, {Account: "charlie@example.com"}, {Label: "ci"}}
	return keys, states
}

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "usage", name)
	if *updateUsageGolden {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update-usage to create it")
	assert.Equal(t, string(want), got)
}

func TestUsageBlocksGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		tty  bool
	}{{"blocks.txt", false}, {"blocks-tty.txt", true}} {
		t.Run(tt.name, func(t *testing.T) {
			keys, states := threeAccounts()
			e := newUsageEnv(t, usageScenario, keys, states)
			r := e.run(t, tt.tty, "usage")
			require.Equal(t, 0, r.code, "one failing account among three is not a failure: %s", r.err)
			assertGolden(t, tt.name, r.out)
			if !tt.tty {
				assert.NotContains(t, r.out, "\x1b[", "no colour when piped")
				assert.Contains(t, r.out, "5h  ███████░░░   72%  resets 14:00:00 (in 4h40m)")
			} else {
				assert.Contains(t, r.out, "\x1b[", "colour on a terminal")
			}
			assert.Contains(t, r.out, "error: usage endpoint: HTTP 500 api_error: Internal server error")
			assert.Contains(t, r.out, noUsageEndpoint)
			assertNoToken(t, keys, r.out, r.err)
			assert.Zero(t, e.calls(keys[3]), "an API key is never sent to the usage endpoint")
			for i := range keys {
				assert.Equal(t, keystore.KeyState{}.CooldownUntil, e.pool(t).State(i).CooldownUntil, "usage never cools a key")
			}
		})
	}
}

func TestUsageJSON(t *testing.T) {
	keys, states := threeAccounts()
	e := newUsageEnv(t, usageScenario, keys, states)
	r := e.run(t, false, "usage", "--json")
	require.Equal(t, 0, r.code, r.err)
	assertGolden(t, "usage.json", r.out)
	var doc struct {
		Accounts []struct {
			Index       int     `json:"index"`
			Fingerprint string  `json:"fingerprint"`
			Label       string  `json:"label"`
			Account     string  `json:"account"`
			State       string  `json:"state"`
			Error       *string `json:"error"`
			Windows     []struct {
				Name        string     `json:"name"`
				Utilization float64    `json:"utilization"`
				ResetsAt    *time.Time `json:"resets_at"`
			} `json:"windows"`
			ExtraUsage *usage.ExtraUsage `json:"extra_usage"`
		} `json:"accounts"`
		FetchedAt time.Time `json:"fetched_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &doc))
	require.Len(t, doc.Accounts, 4)
	a := doc.Accounts[0]
	assert.Equal(t, 1, a.Index)
	assert.Equal(t, keystore.Fingerprint(keys[0]), a.Fingerprint)
	assert.Equal(t, "work", a.Label)
	assert.Equal(t, "active", a.State)
	assert.Nil(t, a.Error)
	require.Len(t, a.Windows, 2)
	assert.Equal(t, "five_hour", a.Windows[0].Name)
	assert.Equal(t, 72.0, a.Windows[0].Utilization, "a percent, as the endpoint reports it")
	assert.Equal(t, time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), *a.Windows[0].ResetsAt)
	require.NotNil(t, a.ExtraUsage)
	assert.False(t, a.ExtraUsage.IsEnabled)
	require.NotNil(t, doc.Accounts[1].Error)
	assert.Contains(t, *doc.Accounts[1].Error, "HTTP 500")
	assert.Empty(t, doc.Accounts[1].Windows)
	c := doc.Accounts[2]
	names := []string{}
	for _, w := range c.Windows {
		names = append(names, w.Name)
	}
	assert.Equal(t, []string{"five_hour", "seven_day", "seven_day:claude-opus-5-5"}, names, "limits[] stand in for absent flat windows")
	require.NotNil(t, c.ExtraUsage)
	assert.True(t, c.ExtraUsage.IsEnabled)
	require.NotNil(t, doc.Accounts[3].Error)
	assert.Equal(t, noUsageEndpoint, *doc.Accounts[3].Error)
	assert.Equal(t, *e.clock, doc.FetchedAt)
	assertNoToken(t, keys, r.out)
}

func TestUsageCache(t *testing.T) {
	keys, states := threeAccounts()
	e := newUsageEnv(t, usageScenario, keys[:1], states[:1])
	require.Equal(t, 0, e.run(t, false, "usage").code)
	require.Equal(t, 0, e.run(t, false, "usage", "--json").code)
	assert.EqualValues(t, 1, e.calls(keys[0]), "a second run within 60 s is answered from the cache")

	*e.clock = e.clock.Add(61 * time.Second)
	require.Equal(t, 0, e.run(t, false, "usage").code)
	assert.EqualValues(t, 2, e.calls(keys[0]), "an answer older than 60 s is asked again")

	data, err := os.ReadFile(filepath.Join(e.state, usage.CacheFileName))
	require.NoError(t, err)
	assert.Contains(t, string(data), keystore.Fingerprint(keys[0]), "keyed by fingerprint")
	assertNoToken(t, keys, string(data))
	fi, err := os.Stat(filepath.Join(e.state, usage.CacheFileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

func TestUsageRetryAfter(t *testing.T) {
	tok := authToken("oat", "limited")
	e := newUsageEnv(t, usageScenario, []string{tok}, []keystore.KeyState{{}})
	r := e.run(t, false, "usage")
	assert.Equal(t, 1, r.code, "the only account failed")
	assert.Contains(t, r.out, "HTTP 429")
	assert.Contains(t, r.out, "next try 09:22:00 (in 2m)")

	*e.clock = e.clock.Add(time.Minute)
	r = e.run(t, false, "usage")
	assert.Contains(t, r.out, "usage endpoint asked to wait: next try 09:22:00 (in 1m)")
	assert.EqualValues(t, 1, e.calls(tok), "retry-after is honoured: no request before it ends")

	*e.clock = e.clock.Add(61 * time.Second)
	r = e.run(t, false, "usage")
	require.Equal(t, 0, r.code, r.out)
	assert.Contains(t, r.out, "72%")
	assert.EqualValues(t, 2, e.calls(tok))
}

func TestUsageLoginNotPooled(t *testing.T) {
	e := newUsageEnv(t, usageScenario, nil, nil)
	access := authToken("oat", "echo")
	login := oauthCred(access, authToken("ort", "echo"), e.clock.Add(time.Hour))
	login["account"] = "echo@example.com"
	e.writeAuth(t, login)
	r := e.run(t, false, "usage", "--json")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, `"state": "login"`)
	assert.Contains(t, r.out, `"account": "echo@example.com"`)
	assert.EqualValues(t, 1, e.calls(access))
	human := e.run(t, false, "usage")
	assert.True(t, strings.HasPrefix(human.out, "login  echo@example.com  "+keystore.Mask(access)+"  not pooled\n"), human.out)
}

func TestUsageNotLoggedIn(t *testing.T) {
	e := newUsageEnv(t, usageScenario, nil, nil)
	r := e.run(t, false, "usage")
	assert.Equal(t, 3, r.code)
	assert.Contains(t, r.err, "not logged in")
}

func TestChatSwitchAt(t *testing.T) {
	hot, cool := authToken("oat", "hot"), authToken("oat", "cool")
	tests := []struct {
		name     string
		args     []string
		env      string
		wantCode int
		wantKey  int // 0-based key that answered; -1: none
	}{
		{"off: the active key is kept", nil, "", 0, 0},
		{"--switch-at 90", []string{"--switch-at", "90"}, "", 0, 1},
		{"PIAUTH_SWITCH_AT=90", nil, "90", 0, 1},
		{"the flag beats the variable", []string{"--switch-at", "99"}, "90", 0, 0},
		{"out of range", []string{"--switch-at", "150"}, "", 2, -1},
		{"not a number", nil, "ninety", 2, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newUsageEnv(t, `{}`, []string{hot, cool}, []keystore.KeyState{{FiveHour: 0.95, Utilization: 0.95}, {FiveHour: 0.2, Utilization: 0.2}})
			vars := e.vars()
			if tt.env != "" {
				vars["PIAUTH_SWITCH_AT"] = tt.env
			}
			f, bufs := newTestFactory("", vars)
			args := append([]string{"piauth", "--dir", e.dir, "--keyring", "off", "chat"}, tt.args...)
			code := run(context.Background(), f, append(args, "hi"))
			require.Equal(t, tt.wantCode, code, bufs.Err.String())
			st := e.emu.Stats().Tokens
			if tt.wantKey < 0 {
				assert.Zero(t, st[keystore.Fingerprint(hot)]+st[keystore.Fingerprint(cool)])
				return
			}
			answered := []string{hot, cool}[tt.wantKey]
			assert.EqualValues(t, 1, st[keystore.Fingerprint(answered)], bufs.Err.String())
			assert.Equal(t, tt.wantKey, e.pool(t).Active)
			if tt.wantKey == 1 {
				assert.Contains(t, bufs.Err.String(), "(switch at 90%); new requests use key 2/2")
			}
		})
	}
}

func TestUsageWatchPiped(t *testing.T) {
	for _, asJSON := range []bool{false, true} {
		t.Run(map[bool]string{false: "text", true: "json"}[asJSON], func(t *testing.T) {
			keys, states := threeAccounts()
			e := newUsageEnv(t, usageScenario, keys[:1], states[:1])
			vars := e.vars()
			vars["PIAUTH_STATE_DIR"] = e.state
			f, bufs := newTestFactory("", vars)
			f.Now = func() time.Time { return *e.clock }
			f.Dir, f.KeyringMode = e.dir, "off"
			src, err := f.Source()
			require.NoError(t, err)
			fe, err := usageFetcher(f)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err = usageRun(ctx, &usageOptions{IO: f.IO, Source: src, Fetcher: fe, Now: f.Now, Every: 20 * time.Millisecond, JSON: asJSON, Watch: true})
			require.NoError(t, err, "the end of a watch is not an error")
			out := bufs.Out.String()
			assert.NotContains(t, out, "\x1b[", "no redraw and no colour when piped")
			if asJSON {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				require.GreaterOrEqual(t, len(lines), 2, out)
				for _, l := range lines {
					var doc usageJSON
					require.NoError(t, json.Unmarshal([]byte(l), &doc), "one JSON document a line")
				}
			} else {
				assert.GreaterOrEqual(t, strings.Count(out, "key 1  work"), 2, out)
			}
			assert.EqualValues(t, 1, e.calls(keys[0]), "later rounds within 60 s come from the cache")
		})
	}
}

func TestUsageWatchPTY(t *testing.T) {
	keys, states := threeAccounts()
	e := newUsageEnv(t, usageScenario, keys[:1], states[:1])
	p := startPTYEnv(t, []string{"PIAUTH_BASE_URL=" + e.url, "PIAUTH_STATE_DIR=" + e.state},
		"--dir", e.dir, "--keyring", "off", "usage", "--watch")
	p.waitFor("Ctrl-C ends")
	out := p.output()
	assert.True(t, strings.HasPrefix(out, "\x1b[H\x1b[2J"), "the report is drawn in place: %q", out)
	assert.Contains(t, out, "5h  ███████░░░   72%")
	p.write("\x03")
	code, _ := p.wait()
	assert.Equal(t, 0, code, "Ctrl-C ends a watch")
}
