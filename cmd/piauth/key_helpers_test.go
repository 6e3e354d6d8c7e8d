package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

// testKey builds a distinct, long, obviously fake token of kind "oat01" or
// "api03" at run time (no token-like literal in the sources).
func testKey(kind string, n int) string {
	return fmt.Sprintf("sk-ant-%s-%s", kind, strings.Repeat(fmt.Sprintf("fake%04dx", n), 9))
}

// piauthRun is one in-process piauth invocation.
type piauthRun struct {
	dir     string            // --dir
	keyring string            // --keyring; "" = off
	env     map[string]string // environment
	stdin   string
	now     time.Time // zero = real clock
}

// result of an in-process run.
type result struct {
	code     int
	out, err string
}

// run executes piauth in-process with args after the global flags.
func (r piauthRun) run(t *testing.T, args ...string) result {
	t.Helper()
	f, bufs := newTestFactory(r.stdin, r.env)
	if !r.now.IsZero() {
		f.Now = func() time.Time { return r.now }
	}
	mode := r.keyring
	if mode == "" {
		mode = "off"
	}
	argv := append([]string{"piauth", "--dir", r.dir, "--keyring", mode}, args...)
	code := run(context.Background(), f, argv)
	return result{code: code, out: bufs.Out.String(), err: bufs.Err.String()}
}

// assertNoSecret fails when any token appears whole in texts.
func assertNoSecret(t *testing.T, toks []string, texts ...string) {
	t.Helper()
	for _, tok := range toks {
		for _, s := range texts {
			assert.NotContains(t, s, tok, "a whole token was printed")
		}
	}
}

// writePoolFile writes key-rotation.json with keys and the given piauth state
// (nil for the seed's plain format).
func writePoolFile(t *testing.T, dir string, keys []string, piauth map[string]any) string {
	t.Helper()
	doc := map[string]any{"keys": keys}
	if piauth != nil {
		doc["piauth"] = piauth
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(dir, keystore.PoolFileName)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// readPool reads the pool file through the keystore (keyring off).
func readPool(t *testing.T, dir string) *keystore.Pool {
	t.Helper()
	s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	p, err := s.Pool()
	require.NoError(t, err)
	return p
}

// decodeList parses `key list --json` output.
func decodeList(t *testing.T, out string) []map[string]any {
	t.Helper()
	var items []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &items), "output: %s", out)
	return items
}

// keyItems returns the keyring item names for toks ("key:<fp>").
func keyItems(toks ...string) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = "key:" + keystore.Fingerprint(tok)
	}
	return out
}
