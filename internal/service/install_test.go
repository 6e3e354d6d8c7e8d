package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/piauth/piauth/internal/testenv"
	"github.com/piauth/piauth/pkg/keystore"
)

// fakeManager is a Manager that records what it is asked and answers a
// fixed state; its command lists are those of the real Systemd.
type fakeManager struct {
	Systemd
	state    State
	stateErr error
	checkErr error
	ran      [][]string
}

func (m *fakeManager) Check(context.Context) error { return m.checkErr }
func (m *fakeManager) State(context.Context) (State, error) {
	return m.state, m.stateErr
}
func (m *fakeManager) Run(_ context.Context, argv []string) error {
	m.ran = append(m.ran, argv)
	return nil
}

func TestInstallUninstallRoundTrip(t *testing.T) {
	cfg := t.TempDir()
	m := &fakeManager{Systemd: Systemd{Unit: UnitName}}
	target, err := New("linux", func(k string) string { return map[string]string{"XDG_CONFIG_HOME": cfg}[k] }, 1000, nil)
	require.NoError(t, err)
	target.Manager = m
	ctx := context.Background()

	plan, err := target.PlanInstall(ctx, goldenSpec)
	require.NoError(t, err)
	_, err = os.Stat(target.Path)
	require.ErrorIs(t, err, os.ErrNotExist, "planning writes nothing")
	require.NoError(t, target.Install(ctx, plan, keystore.WriteFileAtomic))

	fi, err := os.Stat(filepath.Join(cfg, "systemd", "user", UnitName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	data, err := os.ReadFile(target.Path)
	require.NoError(t, err)
	assert.Equal(t, RenderUnit(goldenSpec), data)
	assert.Equal(t, [][]string{{"systemctl", "--user", "daemon-reload"}, {"systemctl", "--user", "enable", "--now", UnitName}}, m.ran)
	argv, _, err := target.ReadInstalled()
	require.NoError(t, err)
	assert.Equal(t, goldenSpec.Argv(), argv)

	m.ran, m.state = nil, State{Loaded: true, Active: true}
	r, err := target.Uninstall(ctx)
	require.NoError(t, err)
	assert.True(t, r.Installed)
	assert.Equal(t, []string{target.Path}, r.Removed)
	assert.Equal(t, [][]string{{"systemctl", "--user", "disable", "--now", UnitName}, {"systemctl", "--user", "daemon-reload"}}, m.ran)
	_, err = os.Stat(target.Path)
	require.ErrorIs(t, err, os.ErrNotExist)

	m.ran = nil
	r, err = target.Uninstall(ctx)
	require.NoError(t, err, "uninstalling twice is fine")
	assert.False(t, r.Installed)
	assert.Empty(t, m.ran, "nothing to stop")
}

func TestInstallWritesNothingWithoutAManager(t *testing.T) {
	cfg := t.TempDir()
	target, err := New("linux", func(k string) string { return map[string]string{"XDG_CONFIG_HOME": cfg}[k] }, 1000, nil)
	require.NoError(t, err)
	m := &fakeManager{Systemd: Systemd{Unit: UnitName}, checkErr: ErrNoManager}
	target.Manager = m
	plan, err := target.PlanInstall(context.Background(), goldenSpec)
	require.NoError(t, err)
	require.ErrorIs(t, target.Install(context.Background(), plan, keystore.WriteFileAtomic), ErrNoManager)
	_, err = os.Stat(target.Path)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Empty(t, m.ran)
}

func TestPlanRefusesSecrets(t *testing.T) {
	target := Target{Kind: KindSystemd, Path: filepath.Join(t.TempDir(), UnitName), Manager: &fakeManager{}}
	_, err := target.PlanInstall(context.Background(), Spec{Binary: "/b", Env: []EnvVar{{"K", "sk-ant-oat01-abcdefghijklmnopqrstuvwxyz0123456789"}}})
	require.ErrorIs(t, err, ErrSecret)
}

// TestSystemdUserReal installs, reinstalls and uninstalls a unit (running
// sleep) on a real systemd user instance with the real systemctl: the
// hardening lines must let it start, a reinstall restarts it, a killed
// process is started again (Restart=on-failure), uninstall stops it.
func TestSystemdUserReal(t *testing.T) {
	inst := testenv.SystemdUser(t)
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	sleep, err = filepath.EvalSymlinks(sleep)
	require.NoError(t, err)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	unit := "piauth-test-" + hex.EncodeToString(suffix) + ".service"
	s := &Systemd{Unit: unit, Exec: ExecRunner(inst.Env)}
	target := Target{Kind: KindSystemd, Path: filepath.Join(inst.UnitDir, unit), Manager: s}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { _, _ = target.Uninstall(context.Background()) })

	spec := Spec{Binary: sleep, Args: []string{"1000"}, Env: []EnvVar{{"PIAUTH_STATE_DIR", "/nonexistent/state"}}}
	plan, err := target.PlanInstall(ctx, spec)
	require.NoError(t, err)
	require.NoError(t, plan.Unreachable)
	assert.False(t, plan.Before.Loaded)
	require.NoError(t, target.Install(ctx, plan, keystore.WriteFileAtomic))
	st, err := s.State(ctx)
	require.NoError(t, err)
	require.True(t, st.Active, "after install: %+v", st)
	require.NotZero(t, st.PID)
	first := st.PID

	plan, err = target.PlanInstall(ctx, spec)
	require.NoError(t, err)
	require.True(t, plan.Before.Active)
	require.NoError(t, target.Install(ctx, plan, keystore.WriteFileAtomic))
	st, err = s.State(ctx)
	require.NoError(t, err)
	require.True(t, st.Active)
	assert.NotEqual(t, first, st.PID, "a reinstall restarts the service")

	// A crash: systemd starts it again after RestartSec.
	killed := st.PID
	require.NoError(t, exec.Command("kill", "-KILL", itoa(killed)).Run())
	require.NoError(t, testenv.WaitFor(ctx, func() bool {
		st, err = s.State(ctx)
		return err == nil && st.Active && st.PID != 0 && st.PID != killed
	}), "not restarted after SIGKILL: %+v", st)

	r, err := target.Uninstall(ctx)
	require.NoError(t, err)
	require.NoError(t, r.Warning)
	assert.Equal(t, []string{target.Path}, r.Removed)
	st, err = s.State(ctx)
	require.NoError(t, err)
	assert.False(t, st.Active, "after uninstall: %+v", st)
	assert.False(t, st.Loaded, "systemd forgot the unit: %+v", st)
}

func itoa(n int) string { return fmt.Sprint(n) }
