package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/service"
	"github.com/piauth/piauth/pkg/keystore"
	"github.com/piauth/piauth/pkg/proxy"
)

// proxyServiceCommands are `piauth proxy install|uninstall|status`: the proxy
// as a systemd user unit (Linux) or a launchd agent (macOS).
func proxyServiceCommands(f *Factory) []*cli.Command {
	return []*cli.Command{newProxyInstallCmd(f), newProxyUninstallCmd(f), newProxyStatusCmd(f)}
}

// serviceTarget is the service of this OS and user, its manager run as
// processes (systemctl --user, launchctl) with piauth's environment.
func serviceTarget(f *Factory) (service.Target, error) {
	return service.New(runtime.GOOS, f.Getenv, os.Getuid(), service.ExecRunner(nil))
}

// proxyInstallFlags are the flags of `piauth proxy install` that shape the
// service's command line.
type proxyInstallFlags struct {
	Binary string // --binary: the piauth to run ("" = this one)
	Addr   string // --addr ("": not given)
	Port   int    // --port (0: not given)
	// Proxy flags passed through when given.
	SwitchAt      string
	MaxRetryAfter string
	WaitForKey    string
	JSONLog       bool
	AllowOrigins  []string
	// Global flags passed through when given on this command line.
	Keyring string
	Timeout string
}

// serviceEnv are the variables a service carries from the installing
// shell when set there: where piauth keeps its state and config, and how
// it behaves. None holds a secret (service.CheckSpec makes sure).
var serviceEnv = []string{
	"PIAUTH_STATE_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "PIAUTH_LEDGER",
	"PIAUTH_KEYRING", "PIAUTH_KEYRING_SERVICE", "PIAUTH_SWITCH_AT", "PIAUTH_TIMEOUT",
	"PIAUTH_SERVICE_FILE", "PIAUTH_CLAUDE_CODE_VERSION", "PIAUTH_BASE_URL", "PIAUTH_TOKEN_URL",
}

// proxyServiceSpec builds the service's command line: the absolute path of
// the binary (symlinks resolved), the agent dir as an absolute --dir, then
// `proxy --addr HOST:PORT` and the proxy flags given. executable is
// os.Executable (injected by tests).
func proxyServiceSpec(f *Factory, fl proxyInstallFlags, executable func() (string, error)) (spec service.Spec, addr string, err error) {
	if spec.Binary, err = serviceBinary(fl.Binary, executable); err != nil {
		return spec, "", err
	}
	if addr, err = serviceAddr(fl.Addr, fl.Port); err != nil {
		return spec, "", err
	}
	dir, err := f.agentDir()
	if err != nil {
		return spec, "", err
	}
	args := []string{"--dir", dir}
	if fl.Keyring != "" {
		args = append(args, "--keyring", fl.Keyring)
	}
	if fl.Timeout != "" {
		args = append(args, "--timeout", fl.Timeout)
	}
	args = append(args, "proxy", "--addr", addr)
	if fl.SwitchAt != "" {
		if v, err := strconv.ParseFloat(fl.SwitchAt, 64); err != nil || v < 1 || v > 100 {
			return spec, "", usagef("--switch-at %q: want a percentage from 1 to 100", fl.SwitchAt)
		}
		args = append(args, "--switch-at", fl.SwitchAt)
	}
	for _, d := range []struct{ name, v string }{{"max-retry-after", fl.MaxRetryAfter}, {"wait-for-key", fl.WaitForKey}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v < 0 {
			return spec, "", usagef("--%s %q: want a duration such as 60s or 5m", d.name, d.v)
		}
		args = append(args, "--"+d.name, d.v)
	}
	if fl.JSONLog {
		args = append(args, "--json-log")
	}
	for _, o := range fl.AllowOrigins {
		if !proxy.ValidOrigin(o) {
			return spec, "", usagef("--allow-origin %q: want scheme://host[:port] (e.g. http://localhost:3000) or null", o)
		}
		args = append(args, "--allow-origin", o)
	}
	spec.Args = args
	for _, name := range serviceEnv {
		v := f.Getenv(name)
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); strings.HasSuffix(name, "_URL") && err == nil && u.User != nil {
			return spec, "", usagef("$%s holds a user name or password in its URL: a service file must not carry one", name)
		}
		if strings.HasSuffix(name, "_DIR") || strings.HasSuffix(name, "_HOME") || strings.HasSuffix(name, "_FILE") || name == "PIAUTH_LEDGER" {
			if abs, err := filepath.Abs(v); err == nil && v != "off" {
				v = abs // the service does not start in this directory
			}
		}
		spec.Env = append(spec.Env, service.EnvVar{Name: name, Value: v})
	}
	return spec, addr, nil
}

// serviceBinary is the piauth a service runs: --binary, else this one. A
// binary of `go run` or `go test` lives in a temp dir and goes away, so it
// is refused unless named with --binary.
func serviceBinary(flag string, executable func() (string, error)) (string, error) {
	path, given := flag, flag != ""
	if !given {
		exe, err := executable()
		if err != nil {
			return "", fmt.Errorf("find the piauth binary: %w (pass --binary PATH)", err)
		}
		path = exe
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", usagef("--binary %q: %v", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", usagef("%s is not an executable file", abs)
	}
	if !given && temporaryBinary(abs) {
		return "", usagef("%s is a temporary build (go run, go test, or a temp dir) that will not stay: install piauth (go install, scripts/install.sh) and run install from there, or pass --binary PATH", abs)
	}
	return abs, nil
}

// temporaryBinary reports whether path is under the temp dir or in a go
// build cache (go-build…).
func temporaryBinary(path string) bool {
	for p := path; p != filepath.Dir(p); p = filepath.Dir(p) {
		if strings.HasPrefix(filepath.Base(p), "go-build") {
			return true
		}
	}
	for _, tmp := range []string{os.TempDir(), "/tmp", "/var/tmp"} {
		if real, err := filepath.EvalSymlinks(tmp); err == nil {
			tmp = real
		}
		if rel, err := filepath.Rel(tmp, path); err == nil && !strings.HasPrefix(rel, "..") {
			return true
		}
	}
	return false
}

// serviceAddr is the service's listen address: --port N is 127.0.0.1:N,
// else --addr, else the proxy's default (proxy.DefaultAddr, 127.0.0.1:8787).
// A service needs a fixed port: clients are configured with it once.
func serviceAddr(addr string, port int) (string, error) {
	switch {
	case port != 0 && addr != "":
		return "", usagef("--port and --addr are the same setting: give one")
	case port != 0:
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	case addr == "":
		addr = proxy.DefaultAddr
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usagef("--addr %q: %v", addr, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", usagef("--addr %q: a service needs a fixed port from 1 to 65535 (0 would pick a new one at each start, and no client could find it)", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, p), nil
}

// proxyInstallOptions are the inputs of `piauth proxy install`.
type proxyInstallOptions struct {
	IO     *IOStreams
	Target service.Target
	Spec   service.Spec
	Addr   string
	DryRun bool
	Warnf  func(format string, a ...any)
}

// proxyInstallRun writes the service file and starts the service, or with
// DryRun prints both and changes nothing.
func proxyInstallRun(ctx context.Context, opts *proxyInstallOptions) error {
	plan, err := opts.Target.PlanInstall(ctx, opts.Spec)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	if opts.DryRun {
		fmt.Fprintf(out, "# dry run: nothing is written or run.\n# would write %s (mode 0600):\n%s", plan.Path, plan.Content)
		if plan.Unreachable != nil {
			fmt.Fprintf(out, "# %v\n# so the commands are those of a first install\n", plan.Unreachable)
		}
		fmt.Fprintln(out, "# then run:")
		for _, argv := range plan.Commands {
			fmt.Fprintln(out, service.CommandLine(argv))
		}
		return nil
	}
	if err := opts.Target.Install(ctx, plan, keystore.WriteFileAtomic); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s\n", plan.Path)
	for _, argv := range plan.Commands {
		fmt.Fprintf(out, "ran: %s\n", service.CommandLine(argv))
	}
	if !proxy.IsLoopback(opts.Addr) {
		opts.Warnf("the service listens on %s, beyond this machine: anyone who can reach it and has the proxy key spends your subscription", opts.Addr)
	}
	dir, _ := service.FlagValue(opts.Spec.Args, "dir")
	fmt.Fprintf(out, "the proxy runs as a service on http://%s, and again at each login; %s\n", dialAddr(opts.Addr), serviceLogHint(opts.Target))
	if opts.Target.Kind == service.KindSystemd {
		fmt.Fprintln(out, "a user unit stops when you log out; to keep it running: loginctl enable-linger $USER")
	}
	fmt.Fprintf(out, "use it with:\n  export ANTHROPIC_BASE_URL=http://%s ANTHROPIC_API_KEY=$(%s)\n", dialAddr(opts.Addr), showKeyCmd(dir))
	return nil
}

// serviceLogHint says where the service's log is.
func serviceLogHint(t service.Target) string {
	if t.Kind == service.KindLaunchd {
		return "log: tail -f " + shellQuote(filepath.Join(t.LogDir, service.LogFileName))
	}
	return "log: journalctl --user -u piauth-proxy -f"
}

// dialAddr is the address a local client dials for listen address addr.
func dialAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// proxyUninstallRun stops and removes the service; without one it says so.
func proxyUninstallRun(ctx context.Context, io *IOStreams, t service.Target, warnf func(string, ...any)) error {
	r, err := t.Uninstall(ctx)
	for _, argv := range r.Ran {
		fmt.Fprintf(io.Out, "ran: %s\n", service.CommandLine(argv))
	}
	for _, p := range r.Removed {
		fmt.Fprintf(io.Out, "removed %s\n", p)
	}
	if err != nil {
		return err
	}
	if !r.Installed {
		fmt.Fprintf(io.Out, "the proxy is not installed as a service (no %s): nothing to remove\n", t.Path)
		return nil
	}
	if r.Warning != nil {
		warnf("%v", r.Warning)
	}
	if t.LogDir != "" {
		fmt.Fprintf(io.Out, "the log stays in %s\n", t.LogDir)
	}
	return nil
}

func newProxyInstallCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "run the proxy as a service: a systemd user unit (Linux) or a launchd agent (macOS)",
		Description: `Writes $XDG_CONFIG_HOME/systemd/user/piauth-proxy.service (default ~/.config)
and runs systemctl --user daemon-reload and enable --now (Linux), or writes
~/Library/LaunchAgents/com.github.piauth.proxy.plist and bootstraps and
kickstarts it in gui/UID (macOS). Installing again replaces the file and
restarts the service. The service runs this piauth binary (--binary to name
another) with the agent dir as --dir and the proxy flags given here; it
restarts on failure and logs to the journal (launchd: ~/Library/Logs/piauth).
It carries no key: the proxy reads its client key from proxy-key in
piauth's state dir. --dry-run prints the file and the commands and changes nothing.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dry-run", Usage: "print the unit or plist and the commands, change nothing"},
			&cli.StringFlag{Name: "binary", Usage: "the piauth `PATH` the service runs (default: this binary, symlinks resolved)"},
			&cli.IntFlag{Name: "port", Usage: "listen on 127.0.0.1:`PORT` (default 8787)"},
			&cli.StringFlag{Name: "addr", Usage: "listen `ADDRESS` (default " + proxy.DefaultAddr + "); a non-loopback host exposes your subscription to the network"},
			&cli.StringFlag{Name: "switch-at", Usage: "the proxy's --switch-at `PERCENT`"},
			&cli.StringFlag{Name: "max-retry-after", Usage: "the proxy's --max-retry-after `DURATION`"},
			&cli.StringFlag{Name: "wait-for-key", Usage: "the proxy's --wait-for-key `DURATION`"},
			&cli.BoolFlag{Name: "json-log", Usage: "the proxy logs NDJSON"},
			&cli.StringSliceFlag{Name: "allow-origin", Usage: "the proxy's --allow-origin `ORIGIN` (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("proxy install takes no arguments")
			}
			fl := proxyInstallFlags{
				Binary: c.String("binary"), Port: c.Int("port"),
				SwitchAt: c.String("switch-at"), MaxRetryAfter: c.String("max-retry-after"), WaitForKey: c.String("wait-for-key"),
				JSONLog: c.Bool("json-log"), AllowOrigins: c.StringSlice("allow-origin"),
				Timeout: f.TimeoutFlag,
			}
			if c.IsSet("addr") {
				fl.Addr = c.String("addr")
			}
			if c.IsSet("port") && (fl.Port < 1 || fl.Port > 65535) {
				return usagef("--port %d: a service needs a fixed port from 1 to 65535 (0 would pick a new one at each start, and no client could find it)", fl.Port)
			}
			if c.IsSet("keyring") {
				fl.Keyring = f.KeyringMode
			}
			spec, addr, err := proxyServiceSpec(f, fl, os.Executable)
			if err != nil {
				return err
			}
			t, err := serviceTarget(f)
			if err != nil {
				return err
			}
			return proxyInstallRun(c.Context, &proxyInstallOptions{IO: f.IO, Target: t, Spec: spec, Addr: addr, DryRun: c.Bool("dry-run"), Warnf: f.warnf})
		},
	}
}

func newProxyUninstallCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "stop the proxy service, disable it and remove its unit or plist",
		Description: `Stops and disables the service installed by 'piauth proxy install' (systemctl
--user disable --now, or launchctl bootout) and removes its file. Without an
installed service it says so and succeeds. The proxy key and the logs stay.`,
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("proxy uninstall takes no arguments")
			}
			t, err := serviceTarget(f)
			if err != nil {
				return err
			}
			return proxyUninstallRun(c.Context, f.IO, t, f.warnf)
		},
	}
}
