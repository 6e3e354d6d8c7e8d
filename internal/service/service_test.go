package service

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenSpec is the Spec of the golden files: a fixed binary, port and dir,
// and a variable whose value needs quoting.
var goldenSpec = Spec{
	Binary: "/usr/local/bin/piauth",
	Args:   []string{"--dir", "/home/ada/.pi/agent", "proxy", "--addr", "127.0.0.1:8787", "--switch-at", "90"},
	Env:    []EnvVar{{"PIAUTH_STATE_DIR", "/home/ada/piauth state"}},
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), string(got))
}

func TestRenderUnitGolden(t *testing.T) {
	unit := RenderUnit(goldenSpec)
	golden(t, UnitName, unit)
	for _, line := range []string{"Restart=on-failure", "RestartSec=5s", "StartLimitBurst=5", "StandardOutput=journal", "StandardError=journal", "NoNewPrivileges=yes", "WantedBy=default.target"} {
		assert.Contains(t, string(unit), "\n"+line+"\n")
	}
	argv, env, err := unitSpec(unit)
	require.NoError(t, err)
	assert.Equal(t, goldenSpec.Argv(), argv)
	assert.Equal(t, map[string]string{"PIAUTH_STATE_DIR": "/home/ada/piauth state"}, env)
}

func TestRenderPlistGolden(t *testing.T) {
	plist := RenderPlist(goldenSpec, "/Users/ada/Library/Logs/piauth")
	golden(t, Label+".plist", plist)

	m, err := parsePlist(plist)
	require.NoError(t, err)
	assert.Equal(t, Label, m["Label"])
	args := make([]string, 0)
	for _, a := range m["ProgramArguments"].([]any) {
		args = append(args, a.(string))
	}
	assert.Equal(t, goldenSpec.Argv(), args)
	assert.Equal(t, map[string]any{"PIAUTH_STATE_DIR": "/home/ada/piauth state"}, m["EnvironmentVariables"])
	assert.Equal(t, true, m["RunAtLoad"])
	assert.Equal(t, map[string]any{"SuccessfulExit": false}, m["KeepAlive"])
	assert.Equal(t, int64(5), m["ThrottleInterval"])
	assert.Equal(t, "/Users/ada/Library/Logs/piauth/proxy.log", m["StandardOutPath"])
	assert.Equal(t, "/Users/ada/Library/Logs/piauth/proxy.log", m["StandardErrorPath"])

	if plutil, err := exec.LookPath("plutil"); err == nil {
		path := filepath.Join(t.TempDir(), "p.plist")
		require.NoError(t, os.WriteFile(path, plist, 0o600))
		out, err := exec.Command(plutil, "-lint", path).CombinedOutput()
		require.NoError(t, err, "plutil -lint: %s", out)
	} else {
		t.Log("plutil is not installed here (macOS has it): the plist is checked with encoding/xml only")
	}
}

// The words of a command line survive the unit's and the plist's quoting.
func TestCommandLineRoundTrip(t *testing.T) {
	tests := map[string][]string{
		"plain":     {"/usr/bin/piauth", "proxy", "--addr", "127.0.0.1:8787"},
		"spaces":    {"/Users/Ada Lovelace/bin/piauth", "--dir", "/Users/Ada Lovelace/.pi/agent", "proxy"},
		"specifier": {"/opt/piauth", "--dir", "/home/u/100%", "proxy", "--allow-origin", "http://x:1$HOME"},
		"quotes":    {"/opt/piauth", `--dir`, `/home/u/it's "here"\now`, "proxy"},
		"xml":       {"/opt/piauth", "--dir", "/home/u/<a&b>", "proxy"},
	}
	for name, argv := range tests {
		t.Run(name, func(t *testing.T) {
			spec := Spec{Binary: argv[0], Args: argv[1:]}
			got, _, err := unitSpec(RenderUnit(spec))
			require.NoError(t, err)
			assert.Equal(t, argv, got, "unit")
			got, _, err = plistSpec(RenderPlist(spec, "/tmp/logs"))
			require.NoError(t, err)
			assert.Equal(t, argv, got, "plist")
		})
	}
}

// The environment a service file sets reads back as it was given (status
// finds the service's state dir with it), whatever its values hold.
func TestEnvRoundTrip(t *testing.T) {
	tests := map[string][]EnvVar{
		"none":      nil,
		"plain":     {{"PIAUTH_STATE_DIR", "/home/u/state"}, {"PIAUTH_LEDGER", "off"}},
		"spaces":    {{"XDG_STATE_HOME", "/Users/Ada Lovelace/.local/state"}},
		"specifier": {{"PIAUTH_STATE_DIR", "/home/u/100%/$HOME"}},
		"quotes":    {{"PIAUTH_STATE_DIR", `/home/u/it's "here"\now`}},
		"xml":       {{"PIAUTH_STATE_DIR", "/home/u/<a&b>"}},
		"equals":    {{"PIAUTH_BASE_URL", "http://127.0.0.1:1/?a=b"}},
	}
	for name, env := range tests {
		t.Run(name, func(t *testing.T) {
			want := map[string]string{}
			for _, e := range env {
				want[e.Name] = e.Value
			}
			spec := Spec{Binary: "/opt/piauth", Args: []string{"proxy"}, Env: env}
			dir := t.TempDir()
			for _, tg := range []Target{
				{Kind: KindSystemd, Path: filepath.Join(dir, UnitName)},
				{Kind: KindLaunchd, Path: filepath.Join(dir, Label+".plist"), LogDir: dir},
			} {
				require.NoError(t, os.WriteFile(tg.Path, tg.Render(spec), 0o600))
				argv, got, err := tg.ReadInstalled()
				require.NoError(t, err, tg.Kind)
				assert.Equal(t, spec.Argv(), argv, tg.Kind)
				assert.Equal(t, want, got, tg.Kind)
			}
		})
	}
	_, _, err := Target{Kind: KindSystemd, Path: filepath.Join(t.TempDir(), "missing")}.ReadInstalled()
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Environment= as systemd reads it: words, later assignments winning, an
// empty one clearing what came before.
func TestUnitEnvAssignments(t *testing.T) {
	unit := []byte("[Service]\nExecStart=/opt/piauth proxy\nEnvironment=A=1 \"B=two words\"\nEnvironment=A=3\n" +
		"Environment=\nEnvironment=C=4\nEnvironment=D=5 E=6\n")
	argv, env, err := unitSpec(unit)
	require.NoError(t, err)
	assert.Equal(t, []string{"/opt/piauth", "proxy"}, argv)
	assert.Equal(t, map[string]string{"C": "4", "D": "5", "E": "6"}, env)
	_, _, err = unitSpec([]byte("[Service]\nEnvironment=A=1\n"))
	assert.ErrorContains(t, err, "no ExecStart= line")
}

func TestCheckSpecRefusesSecrets(t *testing.T) {
	tests := map[string]struct {
		spec Spec
		bad  bool
	}{
		"clean":            {goldenSpec, false},
		"oauth token arg":  {Spec{Binary: "/b", Args: []string{"--token", "sk-ant-oat01-abcdefghijklmnopqrstuvwxyz0123456789"}}, true},
		"api key in env":   {Spec{Binary: "/b", Env: []EnvVar{{"ANTHROPIC_API_KEY", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"}}}, true},
		"proxy key in env": {Spec{Binary: "/b", Env: []EnvVar{{"X", "piauth-proxy-3tXQ2oaG9SkMz1yInqwWARTNmSuQCz1p"}}}, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckSpec(tt.spec)
			if tt.bad {
				require.ErrorIs(t, err, ErrSecret)
				assert.NotContains(t, err.Error(), "abcdefghij", "the error names where, never the secret")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name, goos       string
		env              map[string]string
		kind             Kind
		path, logDir     string
		wantUnsupported  bool
		wantErrSubstring string
	}{
		{name: "linux xdg", goos: "linux", env: map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/cfg"}, kind: KindSystemd, path: "/cfg/systemd/user/piauth-proxy.service"},
		{name: "linux default", goos: "linux", env: map[string]string{"HOME": "/home/u"}, kind: KindSystemd, path: "/home/u/.config/systemd/user/piauth-proxy.service"},
		{name: "linux relative xdg ignored", goos: "linux", env: map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "cfg"}, kind: KindSystemd, path: "/home/u/.config/systemd/user/piauth-proxy.service"},
		{name: "darwin", goos: "darwin", env: map[string]string{"HOME": "/Users/u"}, kind: KindLaunchd, path: "/Users/u/Library/LaunchAgents/com.github.piauth.proxy.plist", logDir: "/Users/u/Library/Logs/piauth"},
		{name: "windows", goos: "windows", env: map[string]string{"HOME": "C:/u"}, wantUnsupported: true},
		{name: "no home", goos: "linux", env: map[string]string{}, wantErrSubstring: "HOME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, path, logDir, err := Paths(tt.goos, env(tt.env))
			switch {
			case tt.wantUnsupported:
				require.ErrorIs(t, err, ErrUnsupported)
			case tt.wantErrSubstring != "":
				require.ErrorContains(t, err, tt.wantErrSubstring)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.kind, kind)
				assert.Equal(t, tt.path, path)
				assert.Equal(t, tt.logDir, logDir)
			}
		})
	}
}

func TestFlagValue(t *testing.T) {
	argv := []string{"/b", "--dir", "/d", "proxy", "--addr=127.0.0.1:9", "--addr", "127.0.0.1:8787"}
	v, ok := FlagValue(argv, "addr")
	assert.True(t, ok)
	assert.Equal(t, "127.0.0.1:8787", v)
	v, _ = FlagValue(argv, "dir")
	assert.Equal(t, "/d", v)
	_, ok = FlagValue(argv, "port")
	assert.False(t, ok)
}

// recorder is a Runner that records each command and answers from a table
// keyed by the command's words after the program.
type recorder struct {
	calls   [][]string
	answers map[string]answer
}

type answer struct {
	out string
	err error
}

func (r *recorder) run(_ context.Context, argv []string) ([]byte, error) {
	r.calls = append(r.calls, slices.Clone(argv))
	a := r.answers[strings.Join(argv, " ")]
	return []byte(a.out), a.err
}

func TestSystemdManager(t *testing.T) {
	show := "systemctl --user show piauth-proxy.service --property=LoadState,ActiveState,SubState,MainPID"
	r := &recorder{answers: map[string]answer{
		show:                                {out: "MainPID=4242\nLoadState=loaded\nActiveState=active\nSubState=running\n"},
		"systemctl --user show-environment": {err: errors.New("exit status 1: Failed to connect to bus: No medium found")},
	}}
	s := &Systemd{Unit: UnitName, Exec: r.run}
	ctx := context.Background()

	st, err := s.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, State{Loaded: true, Active: true, Detail: "active (running)", PID: 4242}, st)
	assert.Equal(t, [][]string{
		{"systemctl", "--user", "daemon-reload"},
		{"systemctl", "--user", "enable", "--now", UnitName},
		{"systemctl", "--user", "restart", UnitName},
	}, s.StartCommands(st), "a running unit is restarted onto the new file")
	assert.Len(t, s.StartCommands(State{}), 2, "a first install: daemon-reload, enable --now")
	assert.Equal(t, [][]string{{"systemctl", "--user", "disable", "--now", UnitName}}, s.StopCommands(st))
	assert.Equal(t, [][]string{{"systemctl", "--user", "daemon-reload"}}, s.RemovedCommands())

	err = s.Check(ctx)
	require.ErrorIs(t, err, ErrNoManager)
	assert.Contains(t, err.Error(), "No medium found", "the manager's own words")

	r.answers[show] = answer{out: "MainPID=0\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n"}
	st, err = s.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, State{Detail: "inactive (dead)"}, st)
}

func TestLaunchdManager(t *testing.T) {
	print := "launchctl print gui/501/" + Label
	r := &recorder{answers: map[string]answer{
		print: {out: "gui/501/com.github.piauth.proxy = {\n\tactive count = 1\n\tstate = running\n\tpid = 777\n\tprogram = /usr/local/bin/piauth\n}\n"},
	}}
	l := &Launchd{UID: 501, Path: "/Users/u/Library/LaunchAgents/" + Label + ".plist", Exec: r.run}
	ctx := context.Background()

	st, err := l.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, State{Loaded: true, Active: true, Detail: "running", PID: 777}, st)
	assert.Equal(t, [][]string{
		{"launchctl", "bootout", "gui/501/" + Label},
		{"launchctl", "enable", "gui/501/" + Label},
		{"launchctl", "bootstrap", "gui/501", l.Path},
		{"launchctl", "kickstart", "gui/501/" + Label},
	}, l.StartCommands(st), "a loaded agent is booted out first: bootstrap refuses a loaded one")
	assert.Equal(t, [][]string{{"launchctl", "bootout", "gui/501/" + Label}}, l.StopCommands(st))

	r.answers[print] = answer{err: errors.New("exit status 113: Could not find service")}
	st, err = l.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, State{}, st, "not loaded")
	assert.Len(t, l.StartCommands(st), 3)
	assert.Empty(t, l.StopCommands(st), "nothing to boot out")

	r.answers[print] = answer{err: exec.ErrNotFound}
	_, err = l.State(ctx)
	require.ErrorIs(t, err, ErrNoManager)
}
