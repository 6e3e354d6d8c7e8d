package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SystemdInstance is a systemd user instance a test can drive with
// `systemctl --user`.
type SystemdInstance struct {
	// Env is the environment under which systemctl --user reaches it
	// (XDG_RUNTIME_DIR and XDG_CONFIG_HOME are the instance's).
	Env []string
	// ConfigHome is its XDG_CONFIG_HOME; UnitDir is ConfigHome/systemd/user.
	ConfigHome, UnitDir string
	// Private is true for an instance of the test's own (started by
	// SystemdUser, stopped when the test ends); false for the session's,
	// which the test must leave as it found it (unique unit names).
	Private bool
}

// SystemdUser returns a systemd user instance. It starts one of the test's
// own — `systemd --user` with fresh XDG_RUNTIME_DIR and XDG_CONFIG_HOME — on
// a machine booted with systemd, or, as root where it was not (a container),
// inside a private mount namespace that shows it an empty /run/systemd/system
// (the "booted with systemd" mark); the instance really starts and stops
// services. Failing that it uses the session's instance when `systemctl
// --user show-environment` answers. Without any, the test is skipped with a
// message naming the missing systemd user instance.
func SystemdUser(t testing.TB) *SystemdInstance {
	t.Helper()
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skipf("no systemd user instance: systemctl is not installed (%v)", err)
	}
	inst, privErr := startSystemdUser(t)
	if privErr == nil {
		return inst
	}
	out, err := exec.Command("systemctl", "--user", "show-environment").CombinedOutput()
	if err != nil {
		t.Skipf("no systemd user instance: a private `systemd --user` could not be started (%v) and the session has none (systemctl --user show-environment: %v: %s)",
			privErr, err, strings.TrimSpace(string(out)))
	}
	cfg := ""
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "XDG_CONFIG_HOME="); ok {
			cfg = v
		}
	}
	if cfg == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("the session's systemd user instance: no home directory: %v", err)
		}
		cfg = filepath.Join(home, ".config")
	}
	return &SystemdInstance{Env: os.Environ(), ConfigHome: cfg, UnitDir: filepath.Join(cfg, "systemd", "user")}
}

// startSystemdUser starts a private systemd user instance and stops it when
// the test ends.
func startSystemdUser(t testing.TB) (*SystemdInstance, error) {
	bin := ""
	for _, p := range []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			bin = p
			break
		}
	}
	if bin == "" {
		return nil, errors.New("no systemd binary in /usr/lib/systemd")
	}
	// The runtime dir holds the instance's socket: keep its path short.
	rt, err := os.MkdirTemp("", "sd-rt-")
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = os.RemoveAll(rt) })
	cfg := t.TempDir()
	var argv []string
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		argv = []string{bin, "--user"}
	} else {
		if os.Geteuid() != 0 {
			return nil, errors.New("the machine was not booted with systemd, and only root can fake that in a mount namespace")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			return nil, fmt.Errorf("the machine was not booted with systemd and unshare is missing: %w", err)
		}
		if fi, err := os.Stat("/run/systemd"); err != nil || !fi.IsDir() {
			return nil, errors.New("the machine was not booted with systemd and has no /run/systemd to cover")
		}
		fake := filepath.Join(t.TempDir(), "run-systemd")
		if err := os.MkdirAll(filepath.Join(fake, "system"), 0o755); err != nil {
			return nil, err
		}
		argv = []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" /run/systemd && exec "$2" --user`, "sh", fake, bin}
	}
	env := append(withoutEnv(os.Environ(), "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DBUS_SESSION_BUS_ADDRESS"),
		"XDG_RUNTIME_DIR="+rt, "XDG_CONFIG_HOME="+cfg)
	var log bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &log, &log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		exit := exec.Command("systemctl", "--user", "exit")
		exit.Env = env
		_ = exit.Run()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	// Wait for its socket: show-environment answers once it is up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := exec.Command("systemctl", "--user", "show-environment")
		probe.Env = env
		out, err := probe.CombinedOutput()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			return nil, fmt.Errorf("systemd --user exited (%v): %s", werr, strings.TrimSpace(log.String()))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return nil, fmt.Errorf("systemd --user did not answer within 30s (%v: %s)", err, strings.TrimSpace(string(out)))
		}
	}
	t.Cleanup(stop)
	return &SystemdInstance{Env: env, ConfigHome: cfg, UnitDir: filepath.Join(cfg, "systemd", "user"), Private: true}, nil
}

// withoutEnv returns env without the variables names.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// WaitFor polls cond every 20ms until it is true or ctx ends; it returns
// ctx.Err() then. For a state another process reaches (a service's port
// open), never as a timed assertion.
func WaitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
