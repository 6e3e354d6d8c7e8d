package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/piauth/piauth/internal/testenv"
)

// 32 real piauth processes add distinct keys at once: the pool's cross-process
// lock must keep every one, in the file and in the (real) keyring.
func TestKeyAddConcurrentProcesses(t *testing.T) {
	const n = 32
	bin := piauthBinary(t)
	svc := testenv.KeyringService(t)
	dir := t.TempDir()
	env := append(os.Environ(), "PIAUTH_KEYRING_SERVICE="+svc, "NO_COLOR=1")

	keys := make([]string, n)
	for i := range keys {
		keys[i] = testKey("oat01", 100+i)
	}
	outs := make([]string, n)
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			cmd := exec.Command(bin, "--dir", dir, "--keyring", "on", "key", "add", "--stdin", "--label", fmt.Sprintf("p%d", i))
			cmd.Env = env
			cmd.Stdin = strings.NewReader(keys[i] + "\n")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("process %d: %w: %s", i, err, stderr.String())
			}
			outs[i] = stdout.String() + stderr.String()
			return nil
		})
	}
	require.NoError(t, g.Wait())

	for i, out := range outs {
		assert.Contains(t, out, "added key ", "process %d", i)
		assertNoSecret(t, keys, out)
	}
	p := readPool(t, dir)
	assert.ElementsMatch(t, keys, p.Keys, "every key in the file")
	for i := range p.Keys {
		assert.True(t, strings.HasPrefix(p.State(i).Label, "p"))
	}
	assert.ElementsMatch(t, append(keyItems(keys...), "index"), testenv.SecretToolUsers(t, svc), "every key in the keyring")

	res := piauthRun{dir: dir, keyring: "on", env: map[string]string{"PIAUTH_KEYRING_SERVICE": svc}}.run(t, "key", "list", "--json")
	require.Equal(t, 0, res.code, res.err)
	items := decodeList(t, res.out)
	require.Len(t, items, n)
	for _, it := range items {
		assert.Equal(t, true, it["in_keyring"], "key %v", it["index"])
	}
}
