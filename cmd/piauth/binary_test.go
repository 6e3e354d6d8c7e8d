package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// testBinary is the piauth binary built once for process-level tests.
var testBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// TestMain removes the binary built by piauthBinary after the tests.
// TestMain gives every piauth process a test starts with the inherited
// environment (relEnv, os.Environ) its own state and config dirs: the
// ledger, learned.json and config.json must never touch the real
// ~/.local/state/piauth or ~/.config/piauth. The dirs go when the run ends.
func TestMain(m *testing.M) {
	if serveRPFloor() { // a helper process of BenchmarkProxyHeldStreams
		return
	}
	tmp, err := os.MkdirTemp("", "piauth-test-home-")
	if err != nil {
		panic(err)
	}
	for k, sub := range map[string]string{"PIAUTH_STATE_DIR": "state", "XDG_CONFIG_HOME": "config", "XDG_STATE_HOME": "xdg-state"} {
		_ = os.Setenv(k, filepath.Join(tmp, sub))
	}
	code := m.Run()
	if testBinary.dir != "" {
		_ = os.RemoveAll(testBinary.dir)
	}
	_ = os.RemoveAll(tmp)
	os.Exit(code)
}

// piauthBinary returns the path of a piauth binary built from this package
// (once per test process) for tests that need real, concurrent processes.
func piauthBinary(t testing.TB) string {
	t.Helper()
	testBinary.once.Do(func() {
		testBinary.dir, testBinary.err = os.MkdirTemp("", "piauth-bin-")
		if testBinary.err != nil {
			return
		}
		testBinary.path = filepath.Join(testBinary.dir, "piauth")
		cmd := exec.Command("go", "build", "-o", testBinary.path, ".")
		testBinary.out, testBinary.err = cmd.CombinedOutput()
	})
	require.NoError(t, testBinary.err, "go build piauth: %s", testBinary.out)
	return testBinary.path
}
