package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/redisstore"
)

const storeTestKey = "a store key for the tests only"

// storeEnv is an emulator plus a throwaway Redis holding the shared pool.
type storeEnv struct {
	*authEnv
	redis *testenv.Redis
}

// newStoreEnv starts Redis and creates the store's meta with a cheap key
// derivation (the processes then derive with it, as every machine does).
func newStoreEnv(t *testing.T) *storeEnv {
	t.Helper()
	e := &storeEnv{authEnv: newAuthEnv(t), redis: testenv.RedisServer(t)}
	b, err := redisstore.Open(context.Background(), redisstore.Options{URL: e.redis.URL(), Passphrase: storeTestKey, ScryptN: 1 << 10})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	return e
}

func (e *storeEnv) vars() map[string]string {
	v := e.authEnv.vars()
	v["PIAUTH_STORE"], v["PIAUTH_STORE_KEY"] = e.redis.URL(), storeTestKey
	return v
}

// runIn runs piauth in-process on agent dir dir with the store's environment
// plus extra.
func (e *storeEnv) runIn(t *testing.T, dir string, extra map[string]string, args ...string) authRun {
	t.Helper()
	env := e.vars()
	for k, v := range extra {
		env[k] = v
	}
	f, bufs := newTestFactory("", env)
	code := run(context.Background(), f, append([]string{"piauth", "--dir", dir, "--keyring", "off"}, args...))
	return authRun{code: code, out: bufs.Out.String(), err: bufs.Err.String()}
}

// shared reads the shared pool directly.
func (e *storeEnv) shared(t *testing.T) *keystore.Pool {
	t.Helper()
	b, err := redisstore.Open(context.Background(), redisstore.Options{URL: e.redis.URL(), Passphrase: storeTestKey})
	require.NoError(t, err)
	defer b.Close()
	p, err := b.ReadPool(context.Background())
	require.NoError(t, err)
	return p
}

// push then pull gives back key-rotation.json byte for byte, on this machine
// and on another; status says they are the same.
func TestStorePushPullRoundTrip(t *testing.T) {
	e := newStoreEnv(t)
	keys := []string{authToken("oat", "p1"), authToken("oat", "p2"), authToken("api", "p3")}
	e.seedPool(t, 1, true, keys, []keystore.KeyState{
		{Label: "work", Refresh: authToken("ort", "p1"), Expires: time.Now().Add(time.Hour).UnixMilli()},
		{Label: "home", Account: "me@example.com", CooldownUntil: time.Now().Add(time.Hour).UTC(), CooldownReason: keystore.ReasonRateLimit},
		{},
	})
	src, err := os.ReadFile(filepath.Join(e.dir, keystore.PoolFileName))
	require.NoError(t, err)

	r := e.runIn(t, e.dir, nil, "store", "push")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "3 added, 0 updated; the store holds 3 keys")
	assert.Contains(t, e.runIn(t, e.dir, nil, "store", "status").out, "same as the store")

	other := t.TempDir()
	r = e.runIn(t, other, nil, "store", "pull")
	require.Equal(t, 0, r.code, r.err)
	got, err := os.ReadFile(filepath.Join(other, keystore.PoolFileName))
	require.NoError(t, err)
	assert.Equal(t, string(src), string(got))
	fi, err := os.Stat(filepath.Join(other, keystore.PoolFileName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	r = e.runIn(t, e.dir, nil, "store", "pull")
	require.Equal(t, 0, r.code, r.err)
	again, err := os.ReadFile(filepath.Join(e.dir, keystore.PoolFileName))
	require.NoError(t, err)
	assert.Equal(t, string(src), string(again))

	// A second push merges: nothing new.
	r = e.runIn(t, e.dir, nil, "store", "push")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "0 added, 0 updated")
	assertNoToken(t, append(keys, authToken("ort", "p1")), r.out, r.err, e.redis.Do("GET", "piauth:{default}:pool"))
}

// pull does not drop keys only the local file has, unless --force.
func TestStorePullKeepsLocalKeys(t *testing.T) {
	e := newStoreEnv(t)
	e.seedPool(t, 0, false, []string{authToken("oat", "l1")}, []keystore.KeyState{{}})
	r := e.runIn(t, e.dir, nil, "store", "pull")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.err, "1 key the store lacks; push them first")
	assert.Len(t, e.pool(t).Keys, 1, "the file is left as it was")
	assert.Contains(t, e.runIn(t, e.dir, nil, "store", "status").out, "1 key the store lacks")
	r = e.runIn(t, e.dir, nil, "store", "pull", "--force")
	require.Equal(t, 0, r.code, r.err)
	assert.Empty(t, e.pool(t).Keys)
}

// The pool commands use the shared pool; status names the store.
func TestStoreUsedByCommands(t *testing.T) {
	e := newStoreEnv(t)
	f, bufs := newTestFactory(authToken("api", "s1")+"\n"+authToken("api", "s2")+"\n", e.vars())
	code := run(context.Background(), f, []string{"piauth", "--dir", e.dir, "--keyring", "off", "key", "add", "--stdin"})
	require.Equal(t, 0, code, bufs.Err.String())
	assert.Len(t, e.shared(t).Keys, 2)
	assert.Empty(t, e.pool(t).Keys, "key-rotation.json is not written")

	r := e.runIn(t, t.TempDir(), nil, "key", "use", "2") // another machine
	require.Equal(t, 0, r.code, r.err)
	assert.Equal(t, 1, e.shared(t).Active)
	r = e.runIn(t, e.dir, nil, "status")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "Store: "+e.redis.URL()+" (prefix piauth:{default}:)")
	assert.Contains(t, r.out, "Key pool: 2 keys, 🔑 2/2")
}

// A wrong store key is a clear error (exit 1), never an empty pool.
func TestStoreWrongKeyCLI(t *testing.T) {
	e := newStoreEnv(t)
	r := e.runIn(t, e.dir, map[string]string{"PIAUTH_STORE_KEY": "not the key of this store"}, "key", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.err, "wrong store key")
	assert.NotContains(t, r.err, "no keys")
	r = e.runIn(t, e.dir, map[string]string{"PIAUTH_STORE_KEY": "too short"}, "key", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.err, "at least 16 characters")
}

// Redis down at start: exit 1 naming the URL (password masked); with
// PIAUTH_STORE_FALLBACK=file the local pool is used, with a warning.
func TestStoreUnreachableAtStart(t *testing.T) {
	e := newStoreEnv(t)
	e.seedPool(t, 0, false, []string{authToken("api", "f1")}, []keystore.KeyState{{}})
	down := "redis://:s3cretpassw0rd@127.0.0.1:1/0"
	r := e.runIn(t, e.dir, map[string]string{"PIAUTH_STORE": down}, "key", "list")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.err, "redis://:****@127.0.0.1:1/0")
	assert.Contains(t, r.err, "store unavailable")
	assert.NotContains(t, r.err, "s3cret")

	r = e.runIn(t, e.dir, map[string]string{"PIAUTH_STORE": down, "PIAUTH_STORE_FALLBACK": "file"}, "key", "list")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.err, "using the local pool")
	assert.Contains(t, r.out, keystore.Mask(authToken("api", "f1")))
}

// 16 `piauth token` processes on two machines (two agent dirs) sharing one
// store, the active key expired: exactly one refresh reaches the token
// endpoint, and every process prints the same new token.
func TestStoreRefreshSingleFlightAcrossMachines(t *testing.T) {
	e := newStoreEnv(t)
	old := authToken("oat", "xm")
	_, err := storeBackend(t, e).UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
		p.Add(old, keystore.KeyState{Refresh: authToken("ort", "xm"), Expires: time.Now().Add(-time.Minute).UnixMilli()})
		p.Add(authToken("api", "xm2"), keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	bin := piauthBinary(t)
	dirs := []string{t.TempDir(), t.TempDir()}

	const n = 16
	outs, errs, codes := tokenProcesses(t, bin, n, dirs, e.vars())

	p := e.shared(t)
	require.Len(t, p.Keys, 2)
	fresh := p.Keys[0]
	require.NotEqual(t, old, fresh)
	for i := range n {
		require.Equal(t, 0, codes[i], errs[i])
		assert.Equal(t, fresh+"\n", outs[i])
		assert.Empty(t, errs[i])
	}
	assert.EqualValues(t, 1, e.emu.Stats().Refreshes)
	assert.Zero(t, e.emu.Stats().RejectedRefreshes)
	assert.True(t, e.usable(t, fresh))
	assert.False(t, p.State(0).NeedsReauth)
	for _, d := range dirs {
		_, err := os.Stat(filepath.Join(d, keystore.PoolFileName))
		assert.ErrorIs(t, err, os.ErrNotExist, "the pool stays in the store")
	}
}

func storeBackend(t *testing.T, e *storeEnv) *redisstore.Backend {
	t.Helper()
	b, err := redisstore.Open(context.Background(), redisstore.Options{URL: e.redis.URL(), Passphrase: storeTestKey})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// config.json's "store" selects the shared store; PIAUTH_STORE=file wins
// over it.
func TestStoreFromConfigFile(t *testing.T) {
	e := newStoreEnv(t)
	cfg := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(cfg, "piauth"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(cfg, "piauth", keystore.ConfigFileName), []byte(`{"store": "`+e.redis.URL()+`"}`), 0o600))
	_, err := storeBackend(t, e).UpdatePool(context.Background(), false, func(p *keystore.Pool) error {
		p.Add(authToken("api", "cfg"), keystore.KeyState{})
		return nil
	})
	require.NoError(t, err)
	env := map[string]string{"PIAUTH_STORE": "", "XDG_CONFIG_HOME": cfg}
	r := e.runIn(t, e.dir, env, "key", "list")
	require.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, keystore.Mask(authToken("api", "cfg")))
	env["PIAUTH_STORE"] = "file"
	r = e.runIn(t, e.dir, env, "key", "list")
	require.Equal(t, 0, r.code, r.err)
	assert.NotContains(t, r.out, keystore.Mask(authToken("api", "cfg")))
}
