package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/pkg/keystore"
)

// crash_corrupt_files: real piauth writers (key add/use/reset/remove, token
// --refresh on auth.json and on a pooled key) killed with SIGKILL at random
// moments; auth.json and key-rotation.json (with its state) always parse and
// hold the old or the new content.
func TestReliabilityCrashKill(t *testing.T) {
	runs := relSize(20, 200)
	env := newAuthEnv(t)
	bin := piauthBinary(t)
	authDir, poolDir := t.TempDir(), t.TempDir()
	vars := relEnv(env.vars())
	poolRefresh := authToken("ort", "crashpool")
	env.seedPoolIn(t, poolDir, []string{authToken("oat", "crashpool"), testKey("api03", 6001), testKey("oat01", 6002)},
		[]keystore.KeyState{{Refresh: poolRefresh, Expires: 1, Label: "pooled"}, {Label: "api"}, {}})

	corrupt, killedEarly := 0, 0
	for run := range runs {
		// The command of this run and its directory.
		var dir string
		var args []string
		stdin := ""
		switch op := run % 6; op {
		case 0, 1: // auth.json refresh, from a fresh (foreign, unused) refresh token
			dir = authDir
			env.writeAuthAt(t, authDir, oauthCred(authToken("oat", fmt.Sprintf("c%d", run)), authToken("ort", fmt.Sprintf("c%d", run)), time.Now().Add(-time.Minute)))
			args = []string{"token", "--refresh"}
		case 2:
			dir, stdin = poolDir, testKey("oat01", 6100+run)+"\n"
			args = []string{"key", "add", "--stdin", "--label", "run" + strconv.Itoa(run)}
		case 3:
			dir, args = poolDir, []string{"key", "use", strconv.Itoa(1 + rand.IntN(3))}
		case 4:
			dir, args = poolDir, []string{"key", "reset"}
		case 5:
			dir, args = poolDir, []string{"token", "--refresh"}
		}
		oldAuth, _ := os.ReadFile(filepath.Join(dir, keystore.AuthFileName))
		oldPoolBytes, _ := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
		var oldPool *keystore.Pool
		if oldPoolBytes != nil {
			oldPool = readPool(t, dir)
		}

		cmd := exec.Command(bin, append([]string{"--dir", dir, "--keyring", "off"}, args...)...)
		cmd.Env = vars
		cmd.Stdin = bytes.NewReader([]byte(stdin))
		require.NoError(t, cmd.Start())
		time.Sleep(time.Duration(rand.IntN(40_000)) * time.Microsecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() {
			killedEarly++ // it had finished already
		}

		bad := func(format string, a ...any) {
			corrupt++
			t.Errorf("run %d (%v): "+format, append([]any{run, args}, a...)...)
		}
		// auth.json: old bytes, or a whole refreshed credential beside pi's other entry.
		if oldAuth != nil {
			b, err := os.ReadFile(filepath.Join(dir, keystore.AuthFileName))
			switch {
			case err != nil:
				bad("auth.json: %v", err)
			case bytes.Equal(b, oldAuth):
			default:
				var doc map[string]json.RawMessage
				c, err := env.storeAt(t, dir).Auth()
				if err != nil || json.Unmarshal(b, &doc) != nil || doc["openai-codex"] == nil {
					bad("auth.json neither old nor new: %v: %q", err, b)
				} else if old := parseAuthBytes(oldAuth); c.Type != "oauth" || c.Access == "" || c.Refresh == "" || c.Access == old[0] || c.Refresh == old[1] {
					bad("auth.json changed but is not a refreshed credential")
				}
			}
		}
		// key-rotation.json: old bytes, or the pool the command makes.
		if oldPool != nil {
			b, err := os.ReadFile(filepath.Join(dir, keystore.PoolFileName))
			if err != nil {
				bad("pool: %v", err)
			} else if !bytes.Equal(b, oldPoolBytes) {
				p, err := env.storeAt(t, dir).Pool()
				if err != nil {
					bad("pool does not parse: %v", err)
				} else if msg := poolTransition(args, oldPool, p, stdin); msg != "" {
					bad("pool neither old nor new: %s", msg)
				}
			}
		}
		// The killed process's locks are stale: age them so the next run takes
		// them over at once instead of after 30 s; drop its temp files.
		past := time.Now().Add(-time.Minute)
		locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
		for _, l := range locks {
			_ = os.Chtimes(l, past, past)
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
		for _, tmp := range tmps {
			_ = os.Remove(tmp)
		}
	}
	t.Logf("%d runs, %d finished before the kill", runs, killedEarly)
	relResult(t, "crash_corrupt_files", corrupt)
	assert.Zero(t, corrupt)
}

// parseAuthBytes returns the anthropic access and refresh tokens of auth.json bytes.
func parseAuthBytes(b []byte) [2]string {
	var doc struct {
		Anthropic struct{ Access, Refresh string } `json:"anthropic"`
	}
	_ = json.Unmarshal(b, &doc)
	return [2]string{doc.Anthropic.Access, doc.Anthropic.Refresh}
}

// poolTransition returns "" when p is a pool args can produce from old.
func poolTransition(args []string, old, p *keystore.Pool, stdin string) string {
	switch args[0] + " " + args[1] {
	case "key add":
		want := append(slices.Clone(old.Keys), stdin[:len(stdin)-1])
		if !slices.Equal(p.Keys, want) {
			return fmt.Sprintf("keys %d, want old + the new one (%d)", len(p.Keys), len(want))
		}
	case "key use", "key reset":
		if !slices.Equal(p.Keys, old.Keys) {
			return "keys changed"
		}
	case "token --refresh": // the active key replaced by its refreshed token, or marked
		if len(p.Keys) != len(old.Keys) {
			return "key count changed"
		}
		for i := range p.Keys {
			if p.Keys[i] != old.Keys[i] && i != old.Active {
				return fmt.Sprintf("key %d changed", i+1)
			}
		}
	}
	for i := range p.Keys {
		_ = p.State(i) // every state decodes
	}
	return ""
}

func (e *authEnv) storeAt(t *testing.T, dir string) *keystore.Store {
	t.Helper()
	s, err := keystore.Open(keystore.Options{Dir: dir, Mode: keystore.ModeOff})
	require.NoError(t, err)
	return s
}

// writeAuthAt writes auth.json in dir with pi's other provider beside anthropic.
func (e *authEnv) writeAuthAt(t *testing.T, dir string, anthropic map[string]any) {
	t.Helper()
	saved := e.dir
	e.dir = dir
	e.writeAuth(t, anthropic)
	e.dir = saved
}

func (e *authEnv) seedPoolIn(t *testing.T, dir string, keys []string, states []keystore.KeyState) {
	t.Helper()
	saved := e.dir
	e.dir = dir
	e.seedPool(t, 0, false, keys, states)
	e.dir = saved
}
