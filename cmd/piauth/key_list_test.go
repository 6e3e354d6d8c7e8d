package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

func TestKeyList(t *testing.T) {
	now := time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)
	k1, k2, k3, k4 := testKey("oat01", 1), testKey("api03", 2), testKey("oat01", 3), testKey("oat01", 4)
	keys := []string{k1, k2, k3, k4}
	state := map[string]any{
		"version": 1, "active": 1, "rotated": true,
		"states": map[string]any{
			keystore.Fingerprint(k1): map[string]any{"label": "work", "refresh": "r", "expires": now.Add(time.Hour).UnixMilli(), "account": "a@example.com"},
			keystore.Fingerprint(k2): map[string]any{"label": "ci", "cooldown_until": "2026-11-28T16:00:00Z"}, // expired cooldown
			keystore.Fingerprint(k3): map[string]any{"cooldown_until": "2026-11-28T17:25:00Z", "cooldown_reason": "rate_limit"},
			keystore.Fingerprint(k4): map[string]any{"needs_reauth": true, "cooldown_until": "2026-11-28T18:00:00Z"},
		},
	}

	t.Run("table", func(t *testing.T) {
		dir := t.TempDir()
		writePoolFile(t, dir, keys, state)
		r := piauthRun{dir: dir, now: now}.run(t, "key", "list")
		require.Equal(t, 0, r.code, r.err)
		assertNoSecret(t, keys, r.out, r.err)
		lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
		require.Len(t, lines, 5, r.out)
		assert.Equal(t, []string{"#", "FINGERPRINT", "KEY", "KIND", "LABEL", "KEYRING", "UTIL", "STATE"}, strings.Fields(lines[0]))
		fp := func(k string) string { return keystore.Fingerprint(k) }
		want := [][]string{
			{"1", fp(k1), keystore.Mask(k1), "oauth", "work", "-", "-", "ready"},
			{"*", "2", fp(k2), keystore.Mask(k2), "api", "ci", "-", "-", "active"},
			{"3", fp(k3), keystore.Mask(k3), "oauth", "-", "-", "-", "cooling", "until"},
			{"4", fp(k4), keystore.Mask(k4), "oauth", "-", "-", "-", "needs-reauth:"},
		}
		for i, w := range want {
			assert.Equal(t, w, strings.Fields(lines[i+1])[:len(w)], "row %d: %q", i+1, lines[i+1])
		}
		// One cooldown reads the same in every command (when.Until).
		assert.Contains(t, lines[3], "cooling until "+now.Add(25*time.Minute).Format("15:04:05")+" (in 25m), rate-limited")
	})

	t.Run("json", func(t *testing.T) {
		dir := t.TempDir()
		writePoolFile(t, dir, keys, state)
		r := piauthRun{dir: dir, now: now}.run(t, "key", "list", "--json")
		require.Equal(t, 0, r.code, r.err)
		assertNoSecret(t, keys, r.out, r.err)
		items := decodeList(t, r.out)
		require.Len(t, items, 4)
		for i, it := range items {
			for _, field := range []string{"index", "fingerprint", "masked", "kind", "label", "active", "state", "cooldown_until", "in_keyring"} {
				assert.Contains(t, it, field, "item %d", i)
			}
			assert.Equal(t, float64(i+1), it["index"])
			assert.Equal(t, keystore.Fingerprint(keys[i]), it["fingerprint"])
			assert.Equal(t, keystore.Mask(keys[i]), it["masked"])
			assert.Equal(t, false, it["in_keyring"], "keyring is off")
		}
		type row struct {
			kind, label, state string
			active             bool
			cooldown           any
		}
		want := []row{
			{"oauth", "work", "ready", false, nil},
			{"api", "ci", "active", true, nil},
			{"oauth", "", "cooling", false, "2026-11-28T17:25:00Z"},
			{"oauth", "", "needs-reauth", false, "2026-11-28T18:00:00Z"},
		}
		for i, w := range want {
			got := row{items[i]["kind"].(string), items[i]["label"].(string), items[i]["state"].(string), items[i]["active"].(bool), items[i]["cooldown_until"]}
			assert.Equal(t, w, got, "item %d", i+1)
		}
		assert.Equal(t, "rate_limit", items[2]["cooldown_reason"])
		assert.Equal(t, true, items[0]["can_refresh"])
		assert.Equal(t, "a@example.com", items[0]["account"])
		assert.Equal(t, now.Add(time.Hour).Format(time.RFC3339), items[0]["expires_at"])
		assert.Nil(t, items[1]["expires_at"])
	})

	t.Run("empty pool", func(t *testing.T) {
		dir := t.TempDir()
		r := piauthRun{dir: dir}.run(t, "key", "list", "--json")
		require.Equal(t, 0, r.code, r.err)
		assert.Equal(t, "[]\n", r.out)
		r = piauthRun{dir: dir}.run(t, "key", "list")
		require.Equal(t, 0, r.code, r.err)
		assert.Empty(t, r.out)
		assert.Contains(t, r.err, "no keys in the pool")
	})

	t.Run("seed format without state", func(t *testing.T) {
		dir := t.TempDir()
		writePoolFile(t, dir, []string{k1, k2}, nil)
		r := piauthRun{dir: dir}.run(t, "key", "list", "--json")
		require.Equal(t, 0, r.code, r.err)
		items := decodeList(t, r.out)
		require.Len(t, items, 2)
		assert.Equal(t, "active", items[0]["state"])
		assert.Equal(t, "ready", items[1]["state"])
	})

	t.Run("arguments are a usage error", func(t *testing.T) {
		r := piauthRun{dir: t.TempDir()}.run(t, "key", "list", "extra")
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.err, "key list takes no arguments")
	})
}
