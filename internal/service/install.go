package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/piauth/piauth/internal/secret"
)

// ErrSecret: a Spec holds something that looks like a credential. A service
// file is readable by the user's other programs and a command line by
// everyone on the machine (ps): the proxy reads its keys from its files.
var ErrSecret = errors.New("a service must not carry a key in its command line or environment")

// proxyKeyPrefix starts every proxy key (keystore.ProxyKeyPrefix; this
// package sits below pkg/keystore).
const proxyKeyPrefix = "piauth-proxy-"

// CheckSpec refuses a Spec with a credential in an argument or a variable:
// an "sk-ant-" token or a proxy key.
func CheckSpec(spec Spec) error {
	check := func(what, v string) error {
		if secret.MaskAll(v) != v || strings.Contains(v, proxyKeyPrefix) {
			return fmt.Errorf("%w (%s)", ErrSecret, what)
		}
		return nil
	}
	for i, a := range spec.Argv() {
		if err := check(fmt.Sprintf("argument %d", i), a); err != nil {
			return err
		}
	}
	for _, e := range spec.Env {
		if err := check("$"+e.Name, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// Plan is what Install does: the file it writes and the commands it runs
// after, for the manager's state before.
type Plan struct {
	Path     string
	Content  []byte
	Before   State
	Commands [][]string
	// Unreachable is why the manager could not be asked for its state
	// (Commands are then those of a first install); nil when it answered.
	Unreachable error
}

// PlanInstall renders spec and works out the commands. It only reads: a dry
// run prints the plan.
func (t Target) PlanInstall(ctx context.Context, spec Spec) (*Plan, error) {
	if err := CheckSpec(spec); err != nil {
		return nil, err
	}
	p := &Plan{Path: t.Path, Content: t.Render(spec)}
	p.Before, p.Unreachable = t.Manager.State(ctx)
	p.Commands = t.Manager.StartCommands(p.Before)
	return p, nil
}

// Install carries out p: it checks that the manager answers (before
// anything is written), writes the file with write (atomic, 0600), creates
// the log dir, and runs the commands.
func (t Target) Install(ctx context.Context, p *Plan, write func(path string, data []byte, perm os.FileMode) error) error {
	if err := t.Manager.Check(ctx); err != nil {
		return err
	}
	if t.LogDir != "" {
		if err := os.MkdirAll(t.LogDir, 0o700); err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
	}
	if err := write(p.Path, p.Content, 0o600); err != nil {
		return err
	}
	for _, argv := range p.Commands {
		if err := t.Manager.Run(ctx, argv); err != nil {
			return fmt.Errorf("%w (the service file %s stays; `piauth proxy uninstall` removes it)", err, p.Path)
		}
	}
	return nil
}

// Removal is what Uninstall did.
type Removal struct {
	Installed bool       // the service file existed
	Ran       [][]string // the commands run
	Removed   []string   // files removed
	// Warning is a failure that did not stop the removal (the manager did
	// not answer, so the file went but a running service may stay).
	Warning error
}

// Uninstall stops and disables the service and removes its file. Without
// a file it does nothing: uninstalling twice is fine. The log dir is left.
func (t Target) Uninstall(ctx context.Context) (*Removal, error) {
	r := &Removal{}
	var err error
	if r.Installed, err = t.Installed(); err != nil || !r.Installed {
		return r, err
	}
	st, err := t.Manager.State(ctx)
	if err != nil {
		r.Warning = err
	} else {
		for _, argv := range t.Manager.StopCommands(st) {
			if err := t.Manager.Run(ctx, argv); err != nil {
				return r, err
			}
			r.Ran = append(r.Ran, argv)
		}
	}
	if err := os.Remove(t.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("remove the service file: %w", err)
	}
	r.Removed = append(r.Removed, t.Path)
	if r.Warning != nil {
		return r, nil
	}
	for _, argv := range t.Manager.RemovedCommands() {
		if err := t.Manager.Run(ctx, argv); err != nil {
			r.Warning = err
			break
		}
		r.Ran = append(r.Ran, argv)
	}
	return r, nil
}
