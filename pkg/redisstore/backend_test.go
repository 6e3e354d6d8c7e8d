package redisstore

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// The pool survives the store as key-rotation.json's document, unknown
// fields included, and no secret reaches Redis in clear.
func TestPoolRoundTripSealed(t *testing.T) {
	r := testenv.RedisServer(t)
	b := open(t, r, testPass)
	src := []byte(`{"keys":["` + tok("oat01", 1) + `","` + tok("api03", 2) + `"],"seed_field":{"x":1},` +
		`"piauth":{"version":1,"active":1,"rotated":true,"future":"kept","states":{"` + keystore.Fingerprint(tok("oat01", 1)) +
		`":{"label":"work","refresh":"` + tok("ort01", 1) + `","expires":4102444800000,"cooldown_until":"2030-01-01T00:00:00Z","cooldown_reason":"rate_limit","odd":[1]}}}}`)
	in, err := keystore.ParsePool("src", src)
	require.NoError(t, err)
	want, err := in.Encode()
	require.NoError(t, err)
	_, err = b.UpdatePool(context.Background(), false, func(p *keystore.Pool) error { *p = *in.Clone(); return nil })
	require.NoError(t, err)

	other := open(t, r, testPass) // another machine
	got, err := other.ReadPool(context.Background())
	require.NoError(t, err)
	out, err := got.Encode()
	require.NoError(t, err)
	assert.Equal(t, string(want), string(out))

	stored := r.Do("GET", b.key("pool"))
	for _, secret := range []string{tok("oat01", 1), tok("api03", 2), tok("ort01", 1), "ant-oat", "ant-ort", "ant-api"} {
		assert.NotContains(t, stored, secret)
	}
	raw := getRaw(t, b)
	assert.Contains(t, raw, keystore.Fingerprint(tok("oat01", 1)), "fingerprints are in clear")
	assert.Contains(t, raw, `"cooldown_reason":"rate_limit"`, "state is in clear")
}

func getRaw(t *testing.T, b *Backend) string {
	v, err := b.rdb.Get(context.Background(), b.key("pool")).Result()
	require.NoError(t, err)
	return v
}

// A wrong passphrase is ErrWrongStoreKey at Open, never an empty pool.
func TestWrongStoreKey(t *testing.T) {
	r := testenv.RedisServer(t)
	b := open(t, r, testPass)
	seed(t, b, 2)
	_, err := Open(context.Background(), Options{URL: r.URL(), Passphrase: "another passphrase, long enough"})
	require.ErrorIs(t, err, keystore.ErrWrongStoreKey)
	assert.Contains(t, err.Error(), r.URL())
	assert.Contains(t, err.Error(), "piauth:{default}:")

	// A tampered value does not open either.
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(getRaw(t, b)), &doc))
	var keys []sealedKey
	require.NoError(t, json.Unmarshal(doc["keys"], &keys))
	keys[0].Token, keys[1].Token = keys[1].Token, keys[0].Token // swapped between keys
	doc["keys"], _ = json.Marshal(keys)
	data, _ := json.Marshal(doc)
	require.NoError(t, b.rdb.Set(context.Background(), b.key("pool"), data, 0).Err())
	_, err = open(t, r, testPass).ReadPool(context.Background())
	require.ErrorIs(t, err, keystore.ErrWrongStoreKey)
}

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	require.NoError(t, os.WriteFile(good, []byte("sixteen chars ok!\n"), 0o600))
	wide := filepath.Join(dir, "wide")
	require.NoError(t, os.WriteFile(wide, []byte("sixteen chars ok!\n"), 0o644))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("short\n"), 0o600))
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"env", map[string]string{"PIAUTH_STORE_KEY": "a passphrase of 24 chars"}, "a passphrase of 24 chars", ""},
		{"env wins over file", map[string]string{"PIAUTH_STORE_KEY": "a passphrase of 24 chars", "PIAUTH_STORE_KEY_FILE": wide}, "a passphrase of 24 chars", ""},
		{"short env", map[string]string{"PIAUTH_STORE_KEY": "fifteen chars.."}, "", "at least 16 characters"},
		{"file", map[string]string{"PIAUTH_STORE_KEY_FILE": good}, "sixteen chars ok!", ""},
		{"file too open", map[string]string{"PIAUTH_STORE_KEY_FILE": wide}, "", "mode 0644"},
		{"short file", map[string]string{"PIAUTH_STORE_KEY_FILE": short}, "", "at least 16 characters"},
		{"missing file", map[string]string{"PIAUTH_STORE_KEY_FILE": filepath.Join(dir, "nope")}, "", "no such file"},
		{"none", map[string]string{}, "", "set PIAUTH_STORE_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Passphrase(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// Machines rotating at once: every update lands (no lost update) and a
// cooldown is recorded once, by one of them, with one active key.
func TestConcurrentRotationsOneCooldown(t *testing.T) {
	r := testenv.RedisServer(t)
	seed(t, open(t, r, testPass), 3)
	const n = 12
	machines := make([]*Backend, n)
	for i := range machines {
		machines[i] = open(t, r, testPass)
	}
	until := time.Now().Add(time.Hour).UTC()
	var wg sync.WaitGroup
	recorded := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			_, err := machines[i].UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
				recorded[i] = false
				st := p.State(0)
				if st.CooldownUntil.IsZero() { // the 429 of key 1: cool it and move on
					st.CooldownUntil, st.CooldownReason = until, keystore.ReasonRateLimit
					st.Label += "+cooldown"
					p.Active, p.Rotated = 1, true
					recorded[i] = true
				}
				p.State(2).Utilization++ // every machine's answer counts
				return nil
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	p, err := open(t, r, testPass).ReadPool(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "k1+cooldown", p.State(0).Label, "one cooldown recorded")
	assert.Equal(t, 1, countTrue(recorded))
	assert.Equal(t, 1, p.Active)
	assert.InDelta(t, n, p.State(2).Utilization, 0.001, "no update lost")
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// Exclusive updates never overlap (across connections), and an optimistic
// update waits for the holder instead of writing under it.
func TestExclusiveUpdatesSerialise(t *testing.T) {
	r := testenv.RedisServer(t)
	seed(t, open(t, r, testPass), 1)
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for range 6 {
		m := open(t, r, testPass)
		wg.Go(func() {
			_, err := m.UpdatePool(context.Background(), true, func(p *keystore.Pool) error {
				mu.Lock()
				inside++
				maxInside = max(maxInside, inside)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				p.State(0).Utilization++
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			})
			assert.NoError(t, err)
		})
		o := open(t, r, testPass)
		wg.Go(func() {
			_, err := o.UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
				p.State(0).FiveHour++
				return nil
			})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 1, maxInside)
	p, err := open(t, r, testPass).ReadPool(context.Background())
	require.NoError(t, err)
	assert.InDelta(t, 6, p.State(0).Utilization, 0.001)
	assert.InDelta(t, 6, p.State(0).FiveHour, 0.001)
	assert.Equal(t, "(nil)", nilOr(r.Do("GET", "piauth:{default}:lock")), "the lock is released")
}

func nilOr(reply string) string {
	if reply == "$-1" {
		return "(nil)"
	}
	return reply
}

// Redis killed mid-run: reads go on with the pool last read, writes are
// retried, then kept in this process (which honours them) and written once
// when Redis is back; exclusive updates (refreshes) fail with
// ErrStoreUnavailable and run nothing. Every machine converges.
func TestRedisKilledAndRestarted(t *testing.T) {
	r := testenv.PersistentRedisServer(t)
	var warn testenv.Buffer
	a, err := Open(context.Background(), Options{URL: r.URL(), Passphrase: testPass, ScryptN: 1 << 10, Warn: &warn,
		Backoff: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	keys := seed(t, a, 2)
	_, err = a.ReadPool(context.Background())
	require.NoError(t, err)

	r.Kill()
	p, err := a.ReadPool(context.Background())
	require.NoError(t, err, "the pool last read is used")
	assert.Equal(t, keys, p.Keys)
	assert.Contains(t, warn.String(), "using the pool as last read")
	calls := 0
	cool := func(p *keystore.Pool) error {
		calls++
		p.State(0).CooldownUntil, p.Active = time.Now().Add(time.Hour), 1
		return nil
	}
	p, err = a.UpdatePool(context.Background(), false, cool)
	require.NoError(t, err, "kept in this process while Redis is away")
	assert.Equal(t, 1, p.Active)
	assert.Contains(t, warn.String(), "kept in this process and written when the store is back")
	p, err = a.ReadPool(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, p.Active, "this process honours its own change")
	refreshed := false
	_, err = a.UpdatePool(context.Background(), true, func(*keystore.Pool) error { refreshed = true; return nil })
	require.ErrorIs(t, err, keystore.ErrStoreUnavailable)
	assert.Contains(t, err.Error(), r.URL())
	assert.False(t, refreshed, "no refresh without the store")

	r.Start()
	b := open(t, r, testPass)
	require.Eventually(t, func() bool {
		p, err := b.ReadPool(context.Background())
		return err == nil && p.Active == 1
	}, 10*time.Second, 10*time.Millisecond, "the kept change reaches the store") // a hang bound
	assert.Equal(t, 2, calls, "applied once here, once on the store's pool: written once")
	for _, m := range []*Backend{a, b} {
		p, err := m.ReadPool(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, p.Active)
		assert.False(t, p.State(0).CooldownUntil.IsZero())
		assert.Equal(t, tok("ort01", 1), p.State(0).Refresh, "no token lost")
	}
	assert.Contains(t, warn.String(), "answers again")
	assert.Contains(t, warn.String(), "1 kept change written")
}

// Redis down at start: an error naming the URL with its password masked.
func TestOpenUnreachable(t *testing.T) {
	addr := "127.0.0.1:1"
	_, err := Open(context.Background(), Options{URL: "redis://user:hunter2hunter2@" + addr + "/0", Passphrase: testPass})
	require.ErrorIs(t, err, keystore.ErrStoreUnavailable)
	assert.Contains(t, err.Error(), "redis://user:****@"+addr+"/0")
	assert.NotContains(t, err.Error(), "hunter2")
}

// A store emptied under a running process (restart without persistence) is
// an error, never an empty pool written over.
func TestStoreWiped(t *testing.T) {
	r := testenv.RedisServer(t)
	b := open(t, r, testPass)
	seed(t, b, 1)
	_, err := b.ReadPool(context.Background())
	require.NoError(t, err)
	require.Equal(t, "+OK", r.Do("FLUSHALL"))
	_, err = b.UpdatePool(context.Background(), false, func(p *keystore.Pool) error { return nil })
	require.ErrorIs(t, err, ErrStoreWiped)
	p, err := b.ReadPool(context.Background())
	require.NoError(t, err, "the pool last read goes on")
	assert.Len(t, p.Keys, 1)

	// Pushed again from another machine (a new meta, a new salt): the
	// running process derives the new key and reads the new pool.
	seed(t, open(t, r, testPass), 3)
	p, err = b.ReadPool(context.Background())
	require.NoError(t, err)
	assert.Len(t, p.Keys, 3)
	_, err = b.UpdatePool(context.Background(), false, func(p *keystore.Pool) error { p.Active = 2; return nil })
	require.NoError(t, err)
	p, err = open(t, r, testPass).ReadPool(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, p.Active)
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://localhost:6379/0":        "redis://localhost:6379/0",
		"redis://:secret@h:1/2":           "redis://:****@h:1/2",
		"rediss://u:p%40ss@h:1":           "rediss://u:****@h:1",
		"redis://u@h:1":                   "redis://u@h:1",
		"redis://u:pa ss@h:1/0?x=%zz%zz&": "redis://****@h:1/0?x=%zz%zz&",
	} {
		assert.Equal(t, want, MaskURL(in), in)
		assert.False(t, strings.Contains(MaskURL(in), "secret"))
	}
}

// Two pools on one Redis (PIAUTH_STORE_POOL) do not see each other.
func TestPoolsApart(t *testing.T) {
	r := testenv.RedisServer(t)
	work, err := Open(context.Background(), Options{URL: r.URL(), Pool: "work", Passphrase: testPass, ScryptN: 1 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { _ = work.Close() })
	seed(t, work, 2)
	home := open(t, r, "another passphrase, for home")
	p, err := home.ReadPool(context.Background())
	require.NoError(t, err)
	assert.Empty(t, p.Keys)
	assert.Equal(t, "piauth:{work}:", work.Prefix())
	_, err = Open(context.Background(), Options{URL: r.URL(), Pool: "no spaces", Passphrase: testPass})
	require.ErrorContains(t, err, "use 1 to 64 letters")
}
