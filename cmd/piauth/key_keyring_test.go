package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// Round trip through the REAL Secret Service: add, list, remove, hand edit +
// sync, lose the file, restore; checked with secret-tool too.
func TestKeyKeyringRoundTrip(t *testing.T) {
	svc := testenv.KeyringService(t)
	dir := t.TempDir()
	r := piauthRun{dir: dir, keyring: "on", env: map[string]string{"PIAUTH_KEYRING_SERVICE": svc}}
	k1, k2, k3, k4 := testKey("oat01", 1), testKey("api03", 2), testKey("oat01", 3), testKey("oat01", 4)
	all := []string{k1, k2, k3, k4}

	r.stdin = k1 + "\n" + k2 + "\n" + k3 + "\n"
	res := r.run(t, "key", "add", "--stdin", "--label", "team")
	require.Equal(t, 0, res.code, res.err)
	assert.ElementsMatch(t, append(keyItems(k1, k2, k3), "index"), testenv.SecretToolUsers(t, svc))

	res = r.run(t, "key", "list", "--json")
	require.Equal(t, 0, res.code, res.err)
	for _, it := range decodeList(t, res.out) {
		assert.Equal(t, true, it["in_keyring"], "key %v", it["index"])
	}
	res = r.run(t, "key", "list")
	require.Equal(t, 0, res.code, res.err)
	assert.Equal(t, 3, strings.Count(res.out, "✓"), res.out)

	res = r.run(t, "key", "remove", "2")
	require.Equal(t, 0, res.code, res.err)
	assert.ElementsMatch(t, append(keyItems(k1, k3), "index"), testenv.SecretToolUsers(t, svc), "remove deletes the keyring item")

	// A hand edit of the file (as the seed README suggests) is picked up by sync.
	poolPath := filepath.Join(dir, keystore.PoolFileName)
	writePoolFile(t, dir, []string{k1, k4}, nil)
	res = r.run(t, "key", "list", "--json")
	require.Equal(t, 0, res.code, res.err)
	items := decodeList(t, res.out)
	require.Len(t, items, 2)
	assert.Equal(t, true, items[0]["in_keyring"])
	assert.Equal(t, false, items[1]["in_keyring"], "hand-added key is not mirrored yet")
	res = r.run(t, "key", "sync")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.out, "2 keys; 2 written, 1 removed")
	assert.ElementsMatch(t, append(keyItems(k1, k4), "index"), testenv.SecretToolUsers(t, svc))
	res = r.run(t, "key", "sync")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.out, "0 written, 0 removed", "sync is idempotent")

	// Lose the file: restore brings the keys back.
	r.stdin = k3 + "\n"
	res = r.run(t, "key", "add", "--stdin", "--label", "late")
	require.Equal(t, 0, res.code, res.err)
	require.NoError(t, os.Remove(poolPath))
	res = r.run(t, "key", "restore")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.out, "restored 3 keys into "+poolPath)
	assert.Contains(t, res.out, "key 3/3 ("+keystore.Mask(k3)+") late")
	p := readPool(t, dir)
	assert.Equal(t, []string{k1, k4, k3}, p.Keys)
	assert.Equal(t, "late", p.State(2).Label)

	// A corrupt file is kept aside and rebuilt.
	corrupt := []byte(`{"keys": [`)
	require.NoError(t, os.WriteFile(poolPath, corrupt, 0o600))
	res = r.run(t, "key", "restore")
	require.Equal(t, 0, res.code, res.err)
	assert.Contains(t, res.err, "kept the malformed file as "+poolPath+".corrupt-")
	kept, err := filepath.Glob(poolPath + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, kept, 1)
	got, err := os.ReadFile(kept[0])
	require.NoError(t, err)
	assert.Equal(t, corrupt, got)
	assert.Equal(t, []string{k1, k4, k3}, readPool(t, dir).Keys)

	// A valid file with keys is never overwritten.
	res = r.run(t, "key", "restore")
	assert.Equal(t, 1, res.code)
	assert.Contains(t, res.err, "refusing to overwrite")
	assertNoSecret(t, all, res.out, res.err)
}

func TestKeySyncRestoreNeedTheKeyring(t *testing.T) {
	for _, cmd := range []string{"sync", "restore"} {
		t.Run(cmd, func(t *testing.T) {
			dir := t.TempDir()
			writePoolFile(t, dir, []string{testKey("oat01", 1)}, nil)
			before, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
			require.NoError(t, err)
			res := piauthRun{dir: dir, keyring: "off"}.run(t, "key", cmd)
			assert.Equal(t, 1, res.code)
			assert.Contains(t, res.err, "keyring is off")
			after, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
			require.NoError(t, err)
			assert.Equal(t, before, after)
		})
	}
}

// countingKeyring counts the calls made to the real OS keyring underneath.
type countingKeyring struct {
	keystore.Keyring
	gets int
}

func (k *countingKeyring) Get(user string) (string, error) {
	k.gets++
	return k.Keyring.Get(user)
}

// `key list` reads the keyring once, not once per key, so it stays fast with
// a large pool.
func TestKeyListLargePoolReadsKeyringOnce(t *testing.T) {
	// The point is the count of keyring reads, which must not grow with the
	// pool; filling the Secret Service is what costs (~50 ms an item).
	n := 250
	if testing.Short() {
		n = 50
	}
	svc := testenv.KeyringService(t)
	dir := t.TempDir()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = testKey("oat01", i)
	}
	writePoolFile(t, dir, keys, nil)
	r := piauthRun{dir: dir, keyring: "on", env: map[string]string{"PIAUTH_KEYRING_SERVICE": svc}}
	res := r.run(t, "key", "sync")
	require.Equal(t, 0, res.code, res.err)

	f, bufs := newTestFactory("", nil)
	kr := &countingKeyring{Keyring: keystore.NewOSKeyring(svc, 0)}
	store, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOn, Keyring: kr})
	require.NoError(t, err)
	err = keyListRun(t.Context(), &keyListOptions{IO: f.IO, Store: func() (*keystore.Store, error) { return store, nil }, Now: f.Now, JSON: true})
	require.NoError(t, err)
	var items []keyListItem
	require.NoError(t, json.Unmarshal(bufs.Out.Bytes(), &items))
	require.Len(t, items, n)
	for _, it := range items {
		require.True(t, it.InKeyring, "key %d", it.Index)
	}
	assert.Equal(t, 1, kr.gets, "one keyring read for the whole pool")
}
