package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// keyring_items_lost_on_sync: `key sync` with key-rotation.json missing or
// emptied removes nothing from the REAL keyring and says how to restore; the
// keyring then rebuilds the file.
func TestReliabilityKeyringSyncPoolGone(t *testing.T) {
	piauthBinary(t)
	tests := []struct {
		name string
		mode string
		lose func(t *testing.T, path string)
	}{
		{name: "file removed, keyring on", mode: "on", lose: func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }},
		{name: "file removed, keyring auto", mode: "auto", lose: func(t *testing.T, p string) { require.NoError(t, os.Remove(p)) }},
		{name: "no keys", mode: "on", lose: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte(`{"keys": []}`), 0o600)) }},
		{name: "empty object", mode: "auto", lose: func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("{}\n"), 0o600)) }},
	}
	lost := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := testenv.KeyringService(t)
			env := map[string]string{"PIAUTH_KEYRING_SERVICE": svc}
			dir := t.TempDir()
			keys := []string{testKey("oat01", 7100+3*i), testKey("api03", 7101+3*i), testKey("oat01", 7102+3*i)}
			add := relRun(t, env, strings.Join(keys, "\n")+"\n", "--dir", dir, "--keyring", "on", "key", "add", "--stdin")
			require.Equal(t, 0, add.code, add.err)
			before := testenv.SecretToolUsers(t, svc)
			require.Len(t, before, len(keys)+1, "one item per key and the index")

			tt.lose(t, filepath.Join(dir, keystore.PoolFileName))
			sync := relRun(t, env, "", "--dir", dir, "--keyring", tt.mode, "key", "sync")
			after := testenv.SecretToolUsers(t, svc)
			for _, it := range before {
				if !slices.Contains(after, it) {
					lost++
					t.Errorf("keyring item %s was removed", it)
				}
			}
			assert.NotEqual(t, 0, sync.code, "sync must refuse: %s", sync.out)
			assert.Contains(t, sync.err, "nothing was removed from the keyring")
			assert.Contains(t, sync.err, "piauth key restore")
			assert.False(t, sync.panicked())

			restore := relRun(t, env, "", "--dir", dir, "--keyring", "on", "key", "restore")
			require.Equal(t, 0, restore.code, restore.err)
			assert.Equal(t, keys, readPool(t, dir).Keys, "the keyring rebuilt the file")
			assertNoSecret(t, keys, add.out, add.err, sync.out, sync.err, restore.out, restore.err)
		})
	}
	relResult(t, "keyring_items_lost_on_sync", lost)
	assert.Zero(t, lost, "keyring_items_lost_on_sync bound")
}

// tokens_sent_after_redirect (token endpoint): a token endpoint that answers
// a redirect never gets the refresh token re-sent to the redirect target.
// (The Messages client adds its own cases to this figure.)
func TestReliabilityRedirectTokenEndpoint(t *testing.T) {
	piauthBinary(t)
	var mu sync.Mutex
	var stolen []string // what reached the redirect target
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, r.Method+" "+r.URL.Path+" "+string(body)+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"x","refresh_token":"y","expires_in":28800}`)
	}))
	t.Cleanup(thief.Close)
	sent := 0
	for i, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, thief.URL+"/steal", status)
			}))
			t.Cleanup(redirector.Close)
			dir := t.TempDir()
			access, refresh := testKey("oat01", 7200+i), "sk-ant-ort01-"+strings.Repeat(fmt.Sprintf("redir%03dx", i), 8)
			writeAuthFile(t, dir, map[string]any{"type": "oauth", "access": access, "refresh": refresh,
				"expires": time.Now().Add(-time.Minute).UnixMilli()})
			p := relRun(t, map[string]string{"PIAUTH_TOKEN_URL": redirector.URL + "/v1/oauth/token"}, "",
				"--dir", dir, "--keyring", "off", "token")
			mu.Lock()
			for _, s := range stolen {
				if strings.Contains(s, refresh) || strings.Contains(s, access) {
					sent++
					t.Errorf("HTTP %d: a token reached the redirect target", status)
				}
			}
			stolen = nil
			mu.Unlock()
			assert.NotEqual(t, 0, p.code)
			assert.Contains(t, p.err, "redirect")
			assert.Empty(t, p.out, "no token printed")
			assertNoSecret(t, []string{access, refresh}, p.out, p.err)
			var doc map[string]map[string]any
			data, err := os.ReadFile(filepath.Join(dir, keystore.AuthFileName))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(data, &doc))
			assert.Equal(t, refresh, doc["anthropic"]["refresh"], "the refresh token is kept")
		})
	}
	relResult(t, "tokens_sent_after_redirect", sent)
	assert.Zero(t, sent, "tokens_sent_after_redirect bound")
}

func writeAuthFile(t *testing.T, dir string, anthropic map[string]any) {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"anthropic": anthropic}, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, keystore.AuthFileName), b, 0o600))
}

// daemons_spawned: with no session bus (no DBUS_SESSION_BUS_ADDRESS, no
// $XDG_RUNTIME_DIR/bus), no piauth command leaves a dbus-daemon or a
// gnome-keyring-daemon behind, and the keyring warning shows once per session.
func TestReliabilityDaemonsSpawned(t *testing.T) {
	// With /run/user/UID/bus, godbus finds a bus by itself: nothing may be
	// launched either, but there is no warning to check.
	_, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid()) + "/bus")
	hostBus := err == nil
	bin := piauthBinary(t)
	probe := make([]byte, 8)
	_, _ = rand.Read(probe)
	mark := "PIAUTH_DAEMON_PROBE=" + hex.EncodeToString(probe) // inherited by anything piauth starts
	home := t.TempDir()
	runtime := filepath.Join(home, "run")
	require.NoError(t, os.Mkdir(runtime, 0o700))
	dir := filepath.Join(home, "agent")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(kv, "XDG_RUNTIME_DIR=") &&
			!strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PIAUTH_") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	env = append(env, mark, "HOME="+home, "XDG_RUNTIME_DIR="+runtime, "NO_COLOR=1", "PIAUTH_KEYRING_SERVICE=piauth-nobus-test")
	key := testKey("oat01", 7300)
	runIn := func(newSession bool, stdin string, args ...string) relProc {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--dir", dir}, args...)...)
		cmd.Env, cmd.Stdin = env, strings.NewReader(stdin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: newSession}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		p := relProc{out: out.String(), err: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		return p
	}

	before := daemonPIDs(t, "")
	session := []relProc{
		runIn(false, key+"\n", "key", "add", "--stdin"),
		runIn(false, "", "key", "list"),
		runIn(false, "", "status"),
		runIn(false, "", "token"),
	}
	on := runIn(false, "", "--keyring", "on", "key", "list")
	syncP := runIn(false, "", "key", "sync")
	other := runIn(true, "", "key", "list") // another shell session
	time.Sleep(time.Second)                 // a launched bus daemonizes asynchronously
	spawned := 0
	for pid, name := range daemonPIDs(t, mark) {
		if _, old := before[pid]; !old {
			spawned++
			t.Errorf("%s (pid %d) was started", name, pid)
			_ = syscall.Kill(pid, syscall.SIGTERM) // started by this test
		}
	}
	relResult(t, "daemons_spawned", spawned)
	assert.Zero(t, spawned, "daemons_spawned bound")
	if hostBus {
		t.Log("/run/user/UID/bus exists: warnings not checked")
		return
	}

	warnings := 0
	for i, p := range session {
		assert.False(t, p.panicked(), "command %d: %s", i, p.err)
		warnings += strings.Count(p.err, "piauth: warning:")
	}
	require.Equal(t, 0, session[0].code, session[0].err)
	assert.Contains(t, session[0].err, "no D-Bus session bus")
	assert.Contains(t, session[0].err, filepath.Join(home, ".config", "piauth", "config.json"))
	assert.Equal(t, 1, warnings, "one warning for the shell session: %q", session)
	assert.Equal(t, 0, session[1].code, session[1].err)
	assert.Contains(t, session[1].out, "sk-ant-oat01-", "listed from the file")
	assert.Equal(t, 1, on.code, "--keyring on without a bus is an error: %s", on.err)
	assert.Contains(t, on.err, "no D-Bus session bus")
	assert.NotEqual(t, 0, syncP.code, "key sync needs the keyring")
	assert.Equal(t, 0, other.code, other.err)
	assert.Equal(t, 1, strings.Count(other.err, "piauth: warning:"), "a new session is told once: %q", other.err)
	assertNoSecret(t, []string{key}, other.out, other.err, on.err, syncP.err)
}

// daemonPIDs lists running dbus-daemon and gnome-keyring-daemon processes;
// with mark, only those whose environment holds it (started by our commands).
func daemonPIDs(t *testing.T, mark string) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		name := strings.TrimSpace(string(comm))
		if err != nil || (name != "dbus-daemon" && !strings.HasPrefix(name, "gnome-keyring-d")) {
			continue
		}
		if mark != "" {
			environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil || !bytes.Contains(environ, []byte(mark)) {
				continue
			}
		}
		out[pid] = name
	}
	return out
}
