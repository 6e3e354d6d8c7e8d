package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/service"
	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/emulator"
	"github.com/piauth/piauth/pkg/keystore"
)

// recordingManager is the service manager of the tests: it answers a fixed
// state and records the commands it is given (their lists are the real
// manager's, which it embeds); the files the commands act on are real.
type recordingManager struct {
	service.Manager
	state    service.State
	stateErr error
	ran      []string
}

func (m *recordingManager) Check(context.Context) error { return nil }
func (m *recordingManager) State(context.Context) (service.State, error) {
	return m.state, m.stateErr
}
func (m *recordingManager) Run(_ context.Context, argv []string) error {
	m.ran = append(m.ran, service.CommandLine(argv))
	return nil
}

// testTarget is the service of goos under a temp HOME and XDG_CONFIG_HOME,
// with a recording manager.
func testTarget(t *testing.T, goos string) (service.Target, *recordingManager) {
	t.Helper()
	home := t.TempDir()
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "cfg")}
	target, err := service.New(goos, func(k string) string { return env[k] }, 501, nil)
	require.NoError(t, err)
	m := &recordingManager{Manager: target.Manager}
	target.Manager = m
	return target, m
}

// fakeBinary is an executable file outside any temp dir name check: tests
// name it with --binary.
func fakeBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "piauth")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"), 0o700))
	real, err := filepath.EvalSymlinks(path)
	require.NoError(t, err)
	return real
}

func TestProxyServiceSpec(t *testing.T) {
	home := t.TempDir()
	bin := fakeBinary(t)
	tests := []struct {
		name    string
		bin     string // the binary wanted ("": bin)
		fl      proxyInstallFlags
		env     map[string]string
		exe     func() (string, error)
		args    []string
		envWant []service.EnvVar
		usage   string // a usage error containing this
	}{
		{name: "defaults", fl: proxyInstallFlags{Binary: bin},
			args: []string{"--dir", home + "/.pi/agent", "proxy", "--addr", "127.0.0.1:8787"}},
		{name: "port and pass-through", fl: proxyInstallFlags{Binary: bin, Port: 9911, SwitchAt: "85", MaxRetryAfter: "60s", WaitForKey: "2m", JSONLog: true, AllowOrigins: []string{"http://localhost:3000"}, Keyring: "off", Timeout: "90s"},
			args: []string{"--dir", home + "/.pi/agent", "--keyring", "off", "--timeout", "90s", "proxy", "--addr", "127.0.0.1:9911", "--switch-at", "85", "--max-retry-after", "60s", "--wait-for-key", "2m", "--json-log", "--allow-origin", "http://localhost:3000"}},
		{name: "addr", fl: proxyInstallFlags{Binary: bin, Addr: ":8800"},
			args: []string{"--dir", home + "/.pi/agent", "proxy", "--addr", "127.0.0.1:8800"}},
		{name: "env carried, made absolute", fl: proxyInstallFlags{Binary: bin},
			env:     map[string]string{"PIAUTH_STATE_DIR": "rel/state", "PIAUTH_SWITCH_AT": "90", "ANTHROPIC_API_KEY": "not carried"},
			args:    []string{"--dir", home + "/.pi/agent", "proxy", "--addr", "127.0.0.1:8787"},
			envWant: []service.EnvVar{{Name: "PIAUTH_STATE_DIR", Value: must(filepath.Abs("rel/state"))}, {Name: "PIAUTH_SWITCH_AT", Value: "90"}}},
		{name: "this binary", fl: proxyInstallFlags{}, exe: func() (string, error) { return "/bin/sh", nil }, bin: must(filepath.EvalSymlinks("/bin/sh")),
			args: []string{"--dir", home + "/.pi/agent", "proxy", "--addr", "127.0.0.1:8787"}},
		{name: "temporary binary refused", fl: proxyInstallFlags{}, usage: "is a temporary build"},
		{name: "random port refused", fl: proxyInstallFlags{Binary: bin, Addr: "127.0.0.1:0"}, usage: "a service needs a fixed port"},
		{name: "port and addr", fl: proxyInstallFlags{Binary: bin, Addr: "127.0.0.1:1", Port: 2}, usage: "give one"},
		{name: "bad duration", fl: proxyInstallFlags{Binary: bin, WaitForKey: "soon"}, usage: "--wait-for-key"},
		{name: "bad switch-at", fl: proxyInstallFlags{Binary: bin, SwitchAt: "150"}, usage: "--switch-at"},
		{name: "bad origin", fl: proxyInstallFlags{Binary: bin, AllowOrigins: []string{"localhost"}}, usage: "--allow-origin"},
		{name: "credentials in a URL", fl: proxyInstallFlags{Binary: bin}, env: map[string]string{"PIAUTH_BASE_URL": "http://user:pw@127.0.0.1:9"}, usage: "PIAUTH_BASE_URL"},
		{name: "missing binary", fl: proxyInstallFlags{Binary: filepath.Join(home, "nope")}, usage: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": home}
			for k, v := range tt.env {
				env[k] = v
			}
			f, _ := newTestFactory("", env)
			exe := tt.exe
			if exe == nil {
				exe = os.Executable // the test binary: under a temp dir
			}
			spec, _, err := proxyServiceSpec(f, tt.fl, exe)
			if tt.usage != "" {
				require.Error(t, err)
				assert.Equal(t, exitUsage, exitCode(err))
				assert.Contains(t, err.Error(), tt.usage)
				return
			}
			require.NoError(t, err)
			if tt.bin == "" {
				tt.bin = bin
			}
			assert.Equal(t, tt.bin, spec.Binary)
			assert.Equal(t, tt.args, spec.Args)
			assert.Equal(t, tt.envWant, spec.Env)
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func TestProxyInstallDryRunChangesNothing(t *testing.T) {
	home := t.TempDir()
	agent := filepath.Join(home, "agent")
	env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(home, "cfg"), "PIAUTH_STATE_DIR": filepath.Join(home, "state")}
	key, err := keystore.ProxyKey(context.Background(), env["PIAUTH_STATE_DIR"], agent, t.Logf)
	require.NoError(t, err)
	f, bufs := newTestFactory("", env)
	bin := fakeBinary(t)
	code := run(context.Background(), f, []string{"piauth", "--dir", agent, "proxy", "install", "--dry-run", "--binary", bin, "--port", "9911", "--wait-for-key", "2m", "--max-retry-after", "60s"})
	require.Equal(t, 0, code, bufs.Err.String())
	out := bufs.Out.String()
	assert.NotContains(t, out, key, "the service never carries the proxy key")
	switch runtime.GOOS {
	case "linux":
		assert.Contains(t, out, "# would write "+filepath.Join(home, "cfg", "systemd", "user", service.UnitName)+" (mode 0600):\n")
		assert.Contains(t, out, "\nExecStart="+bin+" --dir "+agent+" proxy --addr 127.0.0.1:9911 --max-retry-after 60s --wait-for-key 2m\n")
		assert.Contains(t, out, "\nEnvironment=PIAUTH_STATE_DIR="+filepath.Join(home, "state")+"\n")
		assert.Contains(t, out, "\nsystemctl --user daemon-reload\n")
		assert.Contains(t, out, "\nsystemctl --user enable --now piauth-proxy.service\n")
	case "darwin":
		assert.Contains(t, out, "<string>"+bin+"</string>")
		assert.Contains(t, out, "launchctl bootstrap gui/")
	}
	entries, err := os.ReadDir(home)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"state"}, names, "a dry run writes nothing (state holds the key this test made)")
}

func TestProxyInstallRefusesTemporaryBinary(t *testing.T) {
	f, bufs := newTestFactory("", map[string]string{"HOME": t.TempDir()})
	code := run(context.Background(), f, []string{"piauth", "proxy", "install", "--dry-run"})
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, bufs.Err.String(), "is a temporary build")
	assert.Contains(t, bufs.Err.String(), "--binary PATH")
}

func TestProxyInstallRefusesPortZero(t *testing.T) {
	f, bufs := newTestFactory("", map[string]string{"HOME": t.TempDir()})
	code := run(context.Background(), f, []string{"piauth", "proxy", "install", "--dry-run", "--binary", fakeBinary(t), "--port", "0"})
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, bufs.Err.String(), "a service needs a fixed port")
	assert.Empty(t, bufs.Out.String())
}

func TestProxyServiceHelp(t *testing.T) {
	for cmd, args := range map[string][]string{"install": {"proxy", "install", "--help"}, "status": {"help", "proxy", "status"}, "uninstall": {"proxy", "uninstall", "--help"}} {
		f, bufs := newTestFactory("", nil)
		require.Equal(t, 0, run(context.Background(), f, append([]string{"piauth"}, args...)), bufs.Err.String())
		assert.Contains(t, bufs.Out.String(), "EXAMPLES:", args)
		assert.Contains(t, bufs.Out.String(), "piauth proxy "+cmd+" - ", args)
	}
}

func TestProxyInstallUninstallRoundTrip(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			target, m := testTarget(t, goos)
			spec := service.Spec{Binary: "/opt/piauth/bin/piauth", Args: []string{"--dir", "/home/ada/.pi/agent", "proxy", "--addr", "127.0.0.1:8787"}}
			ios, out, errOut := testIO("")
			opts := &proxyInstallOptions{IO: ios, Target: target, Spec: spec, Addr: "127.0.0.1:8787", Warnf: func(string, ...any) {}}
			require.NoError(t, proxyInstallRun(context.Background(), opts), errOut.String())

			data, err := os.ReadFile(target.Path)
			require.NoError(t, err)
			assert.Equal(t, target.Render(spec), data)
			fi, err := os.Stat(target.Path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			assert.Contains(t, out.String(), "wrote "+target.Path+"\n")
			for _, c := range m.ran {
				assert.Contains(t, out.String(), "ran: "+c+"\n")
			}
			assert.Contains(t, out.String(), "export ANTHROPIC_BASE_URL=http://127.0.0.1:8787 ANTHROPIC_API_KEY=$(piauth --dir /home/ada/.pi/agent proxy --show-key)")
			if goos == "linux" {
				assert.Equal(t, []string{"systemctl --user daemon-reload", "systemctl --user enable --now piauth-proxy.service"}, m.ran)
				assert.Contains(t, out.String(), "journalctl --user -u piauth-proxy -f")
			} else {
				assert.Equal(t, []string{"launchctl enable gui/501/" + service.Label, "launchctl bootstrap gui/501 " + target.Path, "launchctl kickstart gui/501/" + service.Label}, m.ran)
				fi, err := os.Stat(target.LogDir)
				require.NoError(t, err, "the log dir exists before launchd opens the log")
				assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
				assert.Contains(t, out.String(), "tail -f "+filepath.Join(target.LogDir, "proxy.log"))
			}

			m.ran, m.state = nil, service.State{Loaded: true, Active: true}
			ios, out, _ = testIO("")
			require.NoError(t, proxyUninstallRun(context.Background(), ios, target, t.Errorf))
			assert.Contains(t, out.String(), "removed "+target.Path+"\n")
			assert.NotEmpty(t, m.ran)
			_, err = os.Stat(target.Path)
			require.ErrorIs(t, err, os.ErrNotExist)

			m.ran = nil
			ios, out, _ = testIO("")
			require.NoError(t, proxyUninstallRun(context.Background(), ios, target, t.Errorf))
			assert.Contains(t, out.String(), "not installed as a service")
			assert.Empty(t, m.ran, "uninstalling twice runs nothing")
		})
	}
}

// statusServer serves the proxy's GET /_piauth/status (the other side's
// format) to requests with key, 401 to others.
func statusServer(t *testing.T, key string) (addr string, calls *int) {
	t.Helper()
	calls = new(int)
	body := `{"version":"v1.2.3","pid":4242,"listen":"127.0.0.1:8787","started_at":"2026-01-02T07:47:00Z",
"uptime_seconds":7980,"in_flight":2,"requests":{"total":12,"by_status":{"429":2,"200":10}},
"rotations":1,"sessions_pinned":3,"bytes_in":1000,"bytes_out":50000,
"keys":[{"index":1,"fingerprint":"3f2a9c1b2d4e","label":"work","state":"active"},
{"index":2,"fingerprint":"ab12cd34ef56","label":"home","state":"cooling","reason":"rate_limited","cooldown_until":"2026-01-02T10:09:55Z"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		if r.URL.Path != proxyStatusPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("x-api-key") != key {
			http.Error(w, `{"type":"error"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), calls
}

func TestProxyStatus(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	running := service.State{Loaded: true, Active: true, Detail: "active (running)", PID: 4242}
	tests := []struct {
		name      string
		install   bool
		state     service.State
		stateErr  error
		wrongKey  bool
		wantCode  int
		wantLines []string
		wantCalls bool
	}{
		{name: "running", install: true, state: running, wantCode: 0, wantCalls: true, wantLines: []string{
			"state:    running, active (running), pid 4242",
			"proxy:    piauth v1.2.3, up 2h13m, 2 in flight",
			"requests: 12 (200: 10, 429: 2)",
			"traffic:  1 rotations, 3 sessions pinned, 1000 bytes in, 50000 bytes out",
			"  key 1  3f2a9c1b2d4e  work  active",
			"  key 2  ab12cd34ef56  home  cooling (rate_limited), until 10:09:55 (in 9m55s)",
		}},
		{name: "not installed", wantCode: 3, wantLines: []string{"service:  not installed (no "}},
		{name: "stopped", install: true, state: service.State{Loaded: true, Detail: "failed (failed)"}, wantCode: 3, wantLines: []string{"state:    not running, failed (failed)"}},
		{name: "wrong key", install: true, state: running, wrongKey: true, wantCode: 0, wantCalls: true, wantLines: []string{"note:     the proxy refused the key of"}},
		{name: "manager silent, proxy answers", install: true, stateErr: service.ErrNoManager, wantCode: 0, wantCalls: true, wantLines: []string{"state:    running, unknown, pid 4242", "requests: 12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, m := testTarget(t, "linux")
			m.state, m.stateErr = tt.state, tt.stateErr
			agent, home := t.TempDir(), t.TempDir()
			// The service's state dir is the one its file sets, not this
			// shell's.
			state := filepath.Join(home, "service-state")
			shell := testGetenv(map[string]string{"HOME": home, "PIAUTH_STATE_DIR": filepath.Join(home, "shell-state")})
			key, err := keystore.ProxyKey(context.Background(), state, "", t.Logf)
			require.NoError(t, err)
			kf, _ := newTestFactory("", nil) // its ProxyKey is status's
			served := key
			if tt.wrongKey {
				served = "piauth-proxy-another"
			}
			addr, calls := statusServer(t, served)
			if tt.install {
				ios, _, _ := testIO("")
				spec := service.Spec{Binary: "/opt/piauth", Args: []string{"--dir", agent, "proxy", "--addr", addr},
					Env: []service.EnvVar{{Name: "PIAUTH_STATE_DIR", Value: state}}}
				require.NoError(t, proxyInstallRun(context.Background(), &proxyInstallOptions{IO: ios, Target: target, Spec: spec, Addr: addr, Warnf: t.Logf}))
			}
			for _, asJSON := range []bool{false, true} {
				ios, out, _ := testIO("")
				opts := &proxyStatusOptions{IO: ios, Target: target, HTTP: http.DefaultClient, DefaultDir: agent,
					Now: func() time.Time { return now }, JSON: asJSON,
					Getenv: shell, Key: kf.ProxyKey}
				err := proxyStatusRun(context.Background(), opts)
				assert.Equal(t, tt.wantCode, exitCode(err), "%v", err)
				if err != nil {
					assert.Empty(t, err.Error(), "the report said it all")
				}
				assert.NotContains(t, out.String(), key)
				if !asJSON {
					for _, l := range tt.wantLines {
						assert.Contains(t, "\n"+out.String(), "\n"+l, "a line starts so")
					}
					continue
				}
				var got map[string]any
				require.NoError(t, json.Unmarshal(out.Bytes(), &got), out.String())
				assert.Equal(t, tt.install, got["installed"])
				assert.Equal(t, tt.wantCode == 0, got["running"])
				assert.Equal(t, target.Path, got["file"])
				if tt.install {
					assert.Equal(t, addr, got["listen"])
					assert.Equal(t, agent, got["agent_dir"])
				}
				if tt.wantCalls && !tt.wrongKey {
					p := got["proxy"].(map[string]any)
					assert.Equal(t, float64(12), p["requests"].(map[string]any)["total"])
				} else {
					assert.Nil(t, got["proxy"])
				}
			}
			assert.Equal(t, tt.wantCalls, *calls > 0, "the proxy is asked only when the service may run")
		})
	}
}

// TestProxyServiceSystemdReal installs the piauth binary as a service of a
// private systemd user instance, with the real systemctl, and talks to the
// proxy it runs; then uninstalls it.
func TestProxyServiceSystemdReal(t *testing.T) {
	inst := testenv.SystemdUser(t)
	if !inst.Private {
		t.Skip("no private systemd user instance (systemd --user of the test's own): the session's would get the real piauth-proxy.service")
	}
	bin := piauthBinary(t)
	e := newProxyCmdEnv(t, emulator.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	env := append(slices.Clone(inst.Env), "PIAUTH_BASE_URL="+e.url, "PIAUTH_STATE_DIR="+e.state, "NO_COLOR=1")
	piauth := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, append([]string{"--dir", e.dir, "--keyring", "off", "proxy"}, args...)...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return code, out.String(), errOut.String()
	}
	t.Cleanup(func() { piauth("uninstall") })

	code, out, errOut := piauth("install", "--binary", bin, "--port", strconv.Itoa(port))
	require.Equal(t, 0, code, "%s%s", out, errOut)
	assert.Contains(t, out, "ran: systemctl --user enable --now piauth-proxy.service")
	unit, err := os.ReadFile(filepath.Join(inst.UnitDir, service.UnitName))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "Environment=PIAUTH_BASE_URL="+e.url+"\n")
	assert.NotContains(t, string(unit), e.tok)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	require.NoError(t, testenv.WaitFor(ctx, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}), "the service never listened")
	resp := proxyPost(t, url, false, "x-api-key", e.showKey(t))
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a request through the service")

	code, out, errOut = piauth("status", "--json")
	require.Equal(t, 0, code, "%s%s", out, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)
	assert.Equal(t, true, st["running"])
	assert.Equal(t, "active (running)", st["state"])
	assert.Equal(t, "127.0.0.1:"+strconv.Itoa(port), st["listen"])
	if p, ok := st["proxy"].(map[string]any); ok {
		assert.Equal(t, st["pid"], p["pid"], "the proxy's pid is the unit's")
	} else {
		assert.Contains(t, st["error"], proxyStatusPath, "a proxy without the status endpoint")
	}

	code, out, errOut = piauth("status")
	require.Equal(t, 0, code, "%s%s", out, errOut)
	assert.Contains(t, out, "state:    running, active (running), pid ")
	assert.Contains(t, out, "listen:   "+url+"\n")
	assert.Contains(t, out, "log:      journalctl --user -u piauth-proxy -f\n")

	code, out, errOut = piauth("uninstall")
	require.Equal(t, 0, code, "%s%s", out, errOut)
	assert.Contains(t, out, "ran: systemctl --user disable --now piauth-proxy.service")
	assert.Contains(t, out, "removed "+filepath.Join(inst.UnitDir, service.UnitName))
	_, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	assert.Error(t, err, "disable --now stopped the proxy")
	code, out, _ = piauth("status")
	assert.Equal(t, 3, code, out)
}
