package rotate

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/stream"
)

// The 2026 failure classes, each against the emulator as the service answers.

func TestHeaderlessRateLimitCoolsNoKey(t *testing.T) {
	// The service refuses a request shape with a fake 429: no key is to
	// blame, so none cools down and at most one other key is tried.
	clk := newClock()
	e, url := emu(t, `{"tokens": [{"contains": "shape", "outcomes": [{"status": 429, "message": "Error", "no_limit_headers": true}]}]}`, clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "shape1"), fakeTok("oat", "shape2"), fakeTok("oat", "shape3")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)
	var log bytes.Buffer
	r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}, url)

	var ae *stream.APIError
	require.ErrorAs(t, r.err, &ae, "the refusal reaches the caller as the service gave it")
	assert.Equal(t, 429, ae.Status)
	assert.Equal(t, ClassShape, Classify(ae))
	assert.Contains(t, Hint(ae), "not a rate limit")
	assert.Equal(t, []int64{1, 1, 0}, counts(e, keys...), "one other key, not the whole pool")
	assert.Contains(t, log.String(), "no cooldown")
	p, err := openStore(t, dir, clk.Now).Pool()
	require.NoError(t, err)
	for i := range keys {
		assert.True(t, p.Status(i, clk.Now()).State.Usable(), "key %d stays ready", i+1)
		assert.True(t, p.State(i).CooldownUntil.IsZero())
	}
	assert.Equal(t, 0, p.Active, "the active key does not move")
}

func TestDisabledAccountSkipped(t *testing.T) {
	clk := newClock()
	e, url := emu(t, "", clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "disabled"), fakeTok("oat", "fine")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)
	var log bytes.Buffer
	r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Log: &log}, url)
	require.NoError(t, r.err)
	assert.Equal(t, []int64{1, 1}, counts(e, keys...))
	assert.Contains(t, log.String(), "🔑 key 1/2 ("+keystore.Mask(keys[0])+") disabled: OAuth is not allowed for this account's organization (403)")

	p, err := openStore(t, dir, clk.Now).Pool()
	require.NoError(t, err)
	assert.Equal(t, keys, p.Keys, "kept in the pool")
	assert.Equal(t, keystore.StateDisabled, p.Status(0, clk.Now()).State)

	// The next run skips it without a request, even hours later.
	clk.Add(6 * time.Hour)
	require.NoError(t, chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url).err)
	assert.Equal(t, []int64{1, 2}, counts(e, keys...))
}

func TestOverloadCooldownIsShort(t *testing.T) {
	// A 529 carrying a unified reset 4 hours away cools the key 30 s, not 4 h;
	// when every key is overloaded the error says so (proxy clients get 529).
	clk := newClock()
	_, url := emu(t, `{"tokens": [{"contains": "busy", "outcomes": [{"status": 529, "unified_reset_in": 14400}]}]}`, clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "busy1"), fakeTok("oat", "busy2")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)
	r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
	var al *AllLimitedError
	require.ErrorAs(t, r.err, &al)
	assert.True(t, al.Overloaded)
	assert.Contains(t, al.Error(), "all 2 keys are overloaded")
	p, err := openStore(t, dir, clk.Now).Pool()
	require.NoError(t, err)
	for i := range keys {
		assert.Equal(t, clk.Now().Add(OverloadedCooldown), p.State(i).CooldownUntil, "key %d", i+1)
	}
}

func TestNonKeyRefusalsDoNotRotate(t *testing.T) {
	tests := []struct{ marker, hint string }{
		{"extrausage", "classifier"},
		{"outofextra", "extra usage is spent"},
		{"longcontext", "long-context"},
	}
	for _, tt := range tests {
		t.Run(tt.marker, func(t *testing.T) {
			clk := newClock()
			e, url := emu(t, "", clk.Now)
			dir := t.TempDir()
			keys := []string{fakeTok("oat", tt.marker), fakeTok("oat", "spare")}
			seedPool(t, openStore(t, dir, clk.Now), keys, nil)
			r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
			var ae *stream.APIError
			require.ErrorAs(t, r.err, &ae)
			assert.Contains(t, Hint(ae), tt.hint)
			assert.Equal(t, []int64{1, 0}, counts(e, keys...), "not the key's fault: no other key spent")
			p, err := openStore(t, dir, clk.Now).Pool()
			require.NoError(t, err)
			assert.Equal(t, keystore.StateActive, p.Status(0, clk.Now()).State)
		})
	}
}

func TestClaudeCodeVersionLearnt(t *testing.T) {
	// The model's floor is above what we send: one 400 teaches the version,
	// the request is retried once, and every later Transport (another
	// process: same learned.json) sends it at once.
	clk := newClock()
	e, url := emu(t, `{"service": {"version_floors": {"claude-sonnet-5-5": "2.1.400"}}}`, clk.Now)
	dir := t.TempDir()
	learned := filepath.Join(t.TempDir(), "state", keystore.LearnedFileName)
	keys := []string{fakeTok("oat", "one"), fakeTok("oat", "two")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)
	require.True(t, stream.NewerVersion("2.1.400", stream.Builtin().Version()), "the test needs a floor above the default")

	var log bytes.Buffer
	tr := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Learned: learned, Log: &log}
	require.NoError(t, chat(t, tr, url).err)
	assert.Equal(t, int64(1), e.Stats().VersionRefused, "one refusal")
	assert.Equal(t, []int64{2, 0}, counts(e, keys...), "one extra request on the same key, no rotation")
	assert.Contains(t, log.String(), "requires Claude Code 2.1.400")
	l, err := keystore.ReadLearned(learned)
	require.NoError(t, err)
	assert.Equal(t, "2.1.400", l.ClaudeCodeVersion)

	require.NoError(t, chat(t, tr, url).err)
	other := &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}, Learned: learned}
	require.NoError(t, chat(t, other, url).err)
	assert.Equal(t, int64(1), e.Stats().VersionRefused, "never again, in this process or another")
	assert.Equal(t, []int64{4, 0}, counts(e, keys...))
}

func TestClaudeCodeVersionRetriedOnlyOnce(t *testing.T) {
	// A service that keeps refusing (its floor moves) gets one retry, then
	// the answer goes back to the caller: no loop.
	clk := newClock()
	e, url := emu(t, `{"tokens": [{"contains": "moving", "outcomes": [
		{"status": 400, "error_code": "claude_code_version_too_old", "message": "Claude Code 2.1.280 does not support this model; version 2.1.400 or newer is required"},
		{"status": 400, "error_code": "claude_code_version_too_old", "message": "Claude Code 2.1.400 does not support this model; version 2.1.500 or newer is required"}]}]}`, clk.Now)
	dir := t.TempDir()
	keys := []string{fakeTok("oat", "moving")}
	seedPool(t, openStore(t, dir, clk.Now), keys, nil)
	r := chat(t, &Transport{Source: &Source{Store: openStore(t, dir, clk.Now), Now: clk.Now}}, url)
	var ae *stream.APIError
	require.ErrorAs(t, r.err, &ae)
	v, ok := stream.RequiredVersion(ae)
	assert.True(t, ok)
	assert.Equal(t, "2.1.500", v)
	assert.Equal(t, []int64{2}, counts(e, keys...))
}
