// Package service installs `piauth proxy` as a service of the user's own
// service manager: a systemd user unit on Linux, a launchd agent on macOS. It
// renders the unit or plist from a Spec (the command line and a few
// non-secret variables, never a key: the proxy reads its client key from its
// key file and the pool from the agent dir), writes it atomically, and drives
// the manager through the Manager interface, so tests can record the calls
// while the files they write are real.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Names of the service.
const (
	// UnitName is the systemd user unit.
	UnitName = "piauth-proxy.service"
	// Label is the launchd agent's label (reverse DNS of the project's home,
	// github.com/piauth) and its plist's base name.
	Label = "com.github.piauth.proxy"
)

// Sentinel errors callers branch on.
var (
	// ErrUnsupported: this OS has no service manager piauth knows.
	ErrUnsupported = errors.New("no supported service manager on this OS")
	// ErrNoManager: the service manager does not answer (no systemd user
	// instance, as in most containers, or no launchd session).
	ErrNoManager = errors.New("the service manager does not answer")
	// ErrNotRunning: the service is not installed, or installed and not
	// running (`piauth proxy status` exits 3).
	ErrNotRunning = errors.New("the proxy service is not running")
)

// Spec is what the service runs. It never holds a secret: Install refuses an
// argument or a value that looks like one.
type Spec struct {
	Binary string   // absolute path of the piauth binary
	Args   []string // arguments after the binary ("--dir", DIR, "proxy", "--addr", …)
	Env    []EnvVar // non-secret environment, in this order
}

// EnvVar is one environment variable of the service.
type EnvVar struct{ Name, Value string }

// Argv is the whole command line: the binary, then Args.
func (s Spec) Argv() []string { return append([]string{s.Binary}, s.Args...) }

// Target is the service on this machine: where its file goes, how it is
// rendered, and the manager that runs it.
type Target struct {
	Kind    Kind    // KindSystemd or KindLaunchd
	Path    string  // the unit or plist
	LogDir  string  // launchd: the directory of its stdout/stderr files; "" for systemd
	Manager Manager // the OS's manager (a recorder in tests)
}

// Kind is a service manager's file format and conventions.
type Kind string

// The supported service managers.
const (
	KindSystemd Kind = "systemd"
	KindLaunchd Kind = "launchd"
)

// Render returns the service file for spec.
func (t Target) Render(spec Spec) []byte {
	if t.Kind == KindLaunchd {
		return RenderPlist(spec, t.LogDir)
	}
	return RenderUnit(spec)
}

// Paths returns, for goos, the kind of service and where its file and (for
// launchd) its logs go: $XDG_CONFIG_HOME/systemd/user/piauth-proxy.service
// (default ~/.config) on Linux, ~/Library/LaunchAgents/LABEL.plist and
// ~/Library/Logs/piauth on macOS. getenv is the caller's environment.
func Paths(goos string, getenv func(string) string) (kind Kind, path, logDir string, err error) {
	home := getenv("HOME")
	switch goos {
	case "linux":
		cfg := getenv("XDG_CONFIG_HOME")
		if cfg == "" || !filepath.IsAbs(cfg) {
			if home == "" {
				return "", "", "", errors.New("no home directory ($HOME is not set); set XDG_CONFIG_HOME")
			}
			cfg = filepath.Join(home, ".config")
		}
		return KindSystemd, filepath.Join(cfg, "systemd", "user", UnitName), "", nil
	case "darwin":
		if home == "" {
			return "", "", "", errors.New("no home directory ($HOME is not set)")
		}
		return KindLaunchd, filepath.Join(home, "Library", "LaunchAgents", Label+".plist"),
			filepath.Join(home, "Library", "Logs", "piauth"), nil
	}
	return "", "", "", fmt.Errorf("%w (%s): run `piauth proxy` under your own service manager", ErrUnsupported, goos)
}

// Manager drives the OS's service manager for the service. Systemd and
// Launchd (this package) run systemctl --user and launchctl; tests may use a
// recorder.
type Manager interface {
	// Check reports ErrNoManager (wrapped, with the manager's words) when
	// the manager does not answer, before anything is written.
	Check(ctx context.Context) error
	// State asks whether the service is loaded and running.
	State(ctx context.Context) (State, error)
	// StartCommands are the commands that load the (just written) service
	// file, enable it at login and start it now, given its state before:
	// a service that runs already is restarted, so the new file takes
	// effect.
	StartCommands(before State) [][]string
	// StopCommands stop the service and unload it, given its state;
	// RemovedCommands run once its file is gone.
	StopCommands(st State) [][]string
	RemovedCommands() [][]string
	// Run runs one command (of the lists above).
	Run(ctx context.Context, argv []string) error
}

// State is what the manager says of the service.
type State struct {
	Loaded bool   // the manager knows the service
	Active bool   // it runs
	Detail string // the manager's word: "active", "failed", "activating", "running"…
	PID    int    // its process, 0 when unknown
}

// CommandLine renders argv for a human (and a POSIX shell).
func CommandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-~+=:,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Installed reports whether the service file exists.
func (t Target) Installed() (bool, error) {
	_, err := os.Lstat(t.Path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("service file: %w", err)
}

// ReadInstalled returns the command line and the environment of the
// installed service file: what ExecStart= and the Environment= lines
// (systemd) or ProgramArguments and EnvironmentVariables (launchd) say, so
// status follows an edited file and finds the state dir the service uses.
func (t Target) ReadInstalled() (argv []string, env map[string]string, err error) {
	data, err := os.ReadFile(t.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("service file: %w", err)
	}
	if t.Kind == KindLaunchd {
		argv, env, err = plistSpec(data)
	} else {
		argv, env, err = unitSpec(data)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	return argv, env, nil
}

// FlagValue returns the value of --name in argv ("--name V" or
// "--name=V"), the last one when repeated.
func FlagValue(argv []string, name string) (string, bool) {
	val, found := "", false
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			val, found = v, true
		} else if a == "--"+name && i+1 < len(argv) {
			val, found = argv[i+1], true
			i++
		}
	}
	return val, found
}

// New returns the Target of goos for the user with id uid and environment
// getenv; its manager runs commands with run.
func New(goos string, getenv func(string) string, uid int, run Runner) (Target, error) {
	kind, path, logDir, err := Paths(goos, getenv)
	if err != nil {
		return Target{}, err
	}
	t := Target{Kind: kind, Path: path, LogDir: logDir}
	if kind == KindLaunchd {
		t.Manager = &Launchd{UID: uid, Path: path, Exec: run}
	} else {
		t.Manager = &Systemd{Unit: UnitName, Exec: run}
	}
	return t, nil
}
