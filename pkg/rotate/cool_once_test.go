package rotate

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
)

// Concurrent 429s of one key (requests that chose it before the first was
// recorded) record its cooldown once: the later ones find it cooling and
// leave it, unless they name a clearly later end.
func TestCooldownRecordedOnce(t *testing.T) {
	clock := newClock()
	s := openStore(t, t.TempDir(), clock.Now)
	keys := []string{fakeTok("oat", "a"), fakeTok("oat", "b")}
	seedPool(t, s, keys, nil)
	var log testenv.Buffer
	tr := &Transport{Source: &Source{Store: s, Now: clock.Now}, Log: &log}
	h := http.Header{"Retry-After": []string{"600"}}
	newAttempt := func() *attempt { return &attempt{tried: map[string]bool{}, refreshed: map[string]bool{}} }

	_, err := tr.cool(context.Background(), keys[0], 0, 2, ClassRotate, h, newAttempt())
	require.NoError(t, err)
	first, err := s.Pool()
	require.NoError(t, err)
	clock.Add(time.Second)
	_, err = tr.cool(context.Background(), keys[0], 0, 2, ClassRotate, h, newAttempt())
	require.NoError(t, err)
	p, err := s.Pool()
	require.NoError(t, err)
	assert.True(t, first.State(0).CooldownUntil.Equal(p.State(0).CooldownUntil), "the second 429 left the cooldown as recorded")
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	require.Len(t, lines, 2)
	assert.NotContains(t, lines[0], "already")
	assert.Contains(t, lines[1], "already cooling until")
	assert.Contains(t, lines[1], "(recorded by another request); trying key 2/2")

	// A reset named well after the recorded one is recorded.
	_, err = tr.cool(context.Background(), keys[0], 0, 2, ClassRotate, http.Header{"Retry-After": []string{"7200"}}, newAttempt())
	require.NoError(t, err)
	p, err = s.Pool()
	require.NoError(t, err)
	assert.True(t, p.State(0).CooldownUntil.After(first.State(0).CooldownUntil.Add(time.Hour)))
}
