package main

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// requestsBy returns how many Messages requests the emulator saw per key.
func requestsBy(h *chatHarness, keys ...string) []int64 {
	st := h.emu.Stats()
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = st.Tokens[emulator.Fingerprint(k)]
	}
	return out
}

func TestChatRotatesPastRateLimitedKey(t *testing.T) {
	h := newChatHarness(t, chatScenario)
	keys := []string{chatToken("ratelimited"), chatToken("second"), chatToken("third")}
	h.pool(0, keys...)

	res := h.run(context.Background(), "", nil, "hi")
	require.Equal(t, 0, res.code, res.err)
	assert.Equal(t, wantText+"\n", res.out)
	assert.Regexp(t, "^"+regexp.QuoteMeta("🔑 key 1/3 ("+keystore.Mask(keys[0])+") cooling until ")+
		`\d\d:\d\d:\d\d \(in (9m5\ds|10m)\), rate-limited; trying key 2/3\n`, res.err)
	assert.Equal(t, wantAccounting+" · 🔑 2/3 (rotated)", lastLine(res.err))
	assert.Equal(t, []int64{1, 1, 0}, requestsBy(h, keys...), "exactly 2 requests")

	// The next run goes straight to key 2, and the rotated mark clears.
	res = h.run(context.Background(), "", nil, "hi")
	require.Equal(t, 0, res.code, res.err)
	assert.NotContains(t, res.err, "rate-limited")
	assert.Equal(t, wantAccounting+" · 🔑 2/3", lastLine(res.err))
	assert.Equal(t, []int64{1, 2, 0}, requestsBy(h, keys...))
}

func TestChatAllKeysRateLimited(t *testing.T) {
	h := newChatHarness(t, chatScenario)
	keys := []string{chatToken("ratelimited-a"), chatToken("ratelimited-b")}
	h.pool(0, keys...)

	res := h.run(context.Background(), "", nil, "hi")
	assert.Equal(t, exitAllLimited, res.code, res.err)
	assert.Empty(t, res.out)
	assert.Regexp(t, `(?m)^piauth: all 2 keys are rate-limited; first one frees at \d\d:\d\d:\d\d \(in (9m5\ds|10m)\)$`, res.err)
	assert.Equal(t, []int64{1, 1}, requestsBy(h, keys...))

	// A second run fails the same way without a request.
	res = h.run(context.Background(), "", nil, "hi")
	assert.Equal(t, exitAllLimited, res.code, res.err)
	assert.Equal(t, []int64{1, 1}, requestsBy(h, keys...))
}

func TestChatWaitsForCooldown(t *testing.T) {
	h := newChatHarness(t, `{"reply": {"text": "Hello from the emulator."}, "tokens": [
		{"contains": "brief1", "outcomes": [{"status": 429, "retry_after": 1}, {"status": 200}]},
		{"contains": "brief2", "outcomes": [{"status": 429, "retry_after": 1}, {"status": 200}]}]}`)
	keys := []string{chatToken("brief1"), chatToken("brief2")}
	h.pool(0, keys...)

	res := h.run(context.Background(), "", nil, "--wait", "hi")
	require.Equal(t, 0, res.code, res.err)
	assert.Equal(t, wantText+"\n", res.out)
	assert.Contains(t, res.err, "⏳ all 2 keys are rate-limited; first one frees at ")
	c := requestsBy(h, keys...)
	assert.Equal(t, int64(3), c[0]+c[1], "two 429s, then one answer")
}
