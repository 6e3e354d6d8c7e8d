package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/piauth/piauth/internal/httpx"
	"github.com/piauth/piauth/internal/secret"
	"github.com/piauth/piauth/internal/service"
	"github.com/piauth/piauth/internal/termsafe"
	"github.com/piauth/piauth/internal/when"
	"github.com/piauth/piauth/pkg/proxy"
)

// proxyStatusPath is the proxy's own status endpoint (proxy key required).
const proxyStatusPath = "/_piauth/status"

// proxyStatusOptions are the inputs of `piauth proxy status`.
type proxyStatusOptions struct {
	IO     *IOStreams
	Target service.Target
	HTTP   *http.Client
	// Key returns the proxy key of a proxy with environment getenv and
	// agent dir agentDir (Factory.ProxyKey).
	Key func(ctx context.Context, getenv func(string) string, agentDir string) (key, path string, err error)
	// Getenv is this process's environment (HOME for the service's state
	// dir).
	Getenv func(string) string
	// DefaultDir is the agent dir when the service file names none.
	DefaultDir string
	Now        func() time.Time
	JSON       bool
}

func newProxyStatusCmd(f *Factory) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "say whether the proxy service is installed and running, where it listens, and its counters",
		Description: `Reads the unit or plist that 'piauth proxy install' wrote, asks the service
manager whether the service runs (systemctl --user show, launchctl print) and
asks the proxy at the address of the file for its counters (GET
/_piauth/status with the proxy key of the state dir the file sets): uptime,
requests by status, rotations, sessions pinned, bytes and each key's state.
Exits 0 when the service runs, 3 when it is not installed or not running.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON (stable snake_case fields)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return usagef("proxy status takes no arguments")
			}
			t, err := serviceTarget(f)
			if err != nil {
				return err
			}
			dir, err := f.agentDir()
			if err != nil {
				return err
			}
			return proxyStatusRun(c.Context, &proxyStatusOptions{
				IO: f.IO, Target: t, DefaultDir: dir, Now: f.Now, JSON: c.Bool("json"),
				HTTP: httpx.New(httpx.Limits{Connect: 2 * time.Second, FirstByte: 5 * time.Second, Idle: 5 * time.Second, SetBy: "proxy status"}),
				Key:  f.ProxyKey, Getenv: f.Getenv,
			})
		},
	}
}

// proxyServiceStatus is `piauth proxy status --json`. The field names are
// stable (README):
//
//	installed  bool    the unit or plist exists
//	manager    string  "systemd" or "launchd"
//	file       string  the unit or plist
//	running    bool    the service runs (exit 0; else exit 3)
//	state      string  the manager's word ("active (running)", "failed (failed)",
//	                   "running"…), "" when not installed, "unknown" when it did not answer
//	pid        int     the service's process, 0 when unknown
//	listen     string  host:port of the file's --addr
//	url        string  the URL local clients use
//	agent_dir  string  the file's --dir
//	proxy      object  the proxy's GET /_piauth/status answer as it sent it, null when not reached
//	error      string  why the manager or the proxy could not be asked, "" when both answered
type proxyServiceStatus struct {
	Installed bool            `json:"installed"`
	Manager   string          `json:"manager"`
	File      string          `json:"file"`
	Running   bool            `json:"running"`
	State     string          `json:"state"`
	PID       int             `json:"pid"`
	Listen    string          `json:"listen"`
	URL       string          `json:"url"`
	AgentDir  string          `json:"agent_dir"`
	Proxy     json.RawMessage `json:"proxy"`
	Error     string          `json:"error"`

	counters *proxyCounters // Proxy decoded, for the human report
	logHint  string         // where the log is (serviceLogHint)
}

// proxyCounters is the proxy's GET /_piauth/status answer; every field may
// be missing.
type proxyCounters struct {
	Version       string  `json:"version"`
	PID           int     `json:"pid"`
	Listen        string  `json:"listen"`
	StartedAt     string  `json:"started_at"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	InFlight      int64   `json:"in_flight"`
	Requests      struct {
		Total    int64            `json:"total"`
		ByStatus map[string]int64 `json:"by_status"`
	} `json:"requests"`
	Rotations      int64 `json:"rotations"`
	SessionsPinned int64 `json:"sessions_pinned"`
	BytesIn        int64 `json:"bytes_in"`
	BytesOut       int64 `json:"bytes_out"`
	Keys           []struct {
		Index         int    `json:"index"`
		Fingerprint   string `json:"fingerprint"`
		Label         string `json:"label"`
		State         string `json:"state"`
		Reason        string `json:"reason"`
		CooldownUntil string `json:"cooldown_until"`
	} `json:"keys"`
}

// proxyStatusRun reports the service and exits 3 (service.ErrNotRunning)
// when it does not run.
func proxyStatusRun(ctx context.Context, opts *proxyStatusOptions) error {
	st, err := collectProxyStatus(ctx, opts)
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else if err := printProxyStatus(opts.IO.Out, st, opts.Now()); err != nil {
		return err
	}
	if !st.Running {
		return &silentError{service.ErrNotRunning}
	}
	return nil
}

func collectProxyStatus(ctx context.Context, opts *proxyStatusOptions) (*proxyServiceStatus, error) {
	t := opts.Target
	st := &proxyServiceStatus{Manager: string(t.Kind), File: t.Path, Proxy: json.RawMessage("null"), logHint: serviceLogHint(t)}
	var err error
	if st.Installed, err = t.Installed(); err != nil || !st.Installed {
		return st, err
	}
	argv, env, err := t.ReadInstalled()
	if err != nil {
		return nil, err
	}
	st.Listen, _ = service.FlagValue(argv, "addr")
	if st.Listen == "" {
		st.Listen = proxy.DefaultAddr
	}
	st.URL = "http://" + dialAddr(st.Listen)
	if st.AgentDir, _ = service.FlagValue(argv, "dir"); st.AgentDir == "" {
		st.AgentDir = opts.DefaultDir
	}
	var problems []string
	ms, merr := t.Manager.State(ctx)
	if merr != nil {
		st.State = "unknown"
		problems = append(problems, merr.Error())
	} else {
		st.State, st.PID, st.Running = ms.Detail, ms.PID, ms.Active
		if st.State == "" {
			st.State = "not loaded"
		}
	}
	if st.Running || merr != nil {
		raw, c, err := fetchProxyCounters(ctx, opts, st.URL, st.AgentDir, serviceGetenv(env, opts.Getenv))
		if err != nil {
			problems = append(problems, err.Error())
		} else {
			st.Proxy, st.counters = raw, c
			st.Running = true // it answers: it runs, whatever the manager could tell
			if st.PID == 0 {
				st.PID = c.PID
			}
		}
	}
	st.Error = secret.MaskAll(strings.Join(problems, "; "))
	return st, nil
}

// serviceGetenv is the environment the service's proxy resolves its state
// dir with: env, the variables the service file sets (serviceEnv, carried
// from the installing shell), and for the rest nothing but this user's
// HOME, so a variable set in this shell and not in the file does not lead
// status to another state dir than the service's.
func serviceGetenv(env map[string]string, getenv func(string) string) func(string) string {
	return func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		if name == "HOME" {
			return getenv(name)
		}
		return ""
	}
}

// fetchProxyCounters asks the proxy at base for its status with the proxy
// key of the state dir getenv resolves (moving one left in agentDir).
func fetchProxyCounters(ctx context.Context, opts *proxyStatusOptions, base, agentDir string, getenv func(string) string) (json.RawMessage, *proxyCounters, error) {
	key, keyPath, err := opts.Key(ctx, getenv, agentDir)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+proxyStatusPath, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("x-api-key", key)
	resp, err := opts.HTTP.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("the proxy does not answer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("the proxy's status: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, nil, fmt.Errorf("the proxy refused the key of %s (HTTP %d): it runs with another state dir than its service file says", keyPath, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil, errors.New("the proxy has no " + proxyStatusPath + " (HTTP 404): a piauth older than its service")
	case resp.StatusCode != http.StatusOK:
		return nil, nil, fmt.Errorf("the proxy's status: HTTP %d", resp.StatusCode)
	}
	body = []byte(secret.MaskAll(string(body)))
	var c proxyCounters
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, nil, fmt.Errorf("the proxy's status: %w", err)
	}
	return json.RawMessage(body), &c, nil
}

// printProxyStatus is the human report.
func printProxyStatus(w io.Writer, st *proxyServiceStatus, now time.Time) error {
	var b strings.Builder
	if !st.Installed {
		fmt.Fprintf(&b, "service:  not installed (no %s); piauth proxy install sets it up\n", st.File)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "service:  installed (%s %s)\n", st.Manager, st.File)
	run := "not running"
	if st.Running {
		run = "running"
	}
	fmt.Fprintf(&b, "state:    %s, %s", run, st.State)
	if st.PID != 0 {
		fmt.Fprintf(&b, ", pid %d", st.PID)
	}
	fmt.Fprintf(&b, "\nlisten:   %s\n", st.URL)
	if c := st.counters; c != nil {
		b.WriteString("proxy:    ")
		if c.Version != "" {
			b.WriteString("piauth " + termsafe.String(c.Version) + ", ")
		}
		fmt.Fprintf(&b, "up %s, %d in flight\n", when.Duration(time.Duration(c.UptimeSeconds*float64(time.Second))), c.InFlight)
		fmt.Fprintf(&b, "requests: %d%s\n", c.Requests.Total, byStatusText(c.Requests.ByStatus))
		fmt.Fprintf(&b, "traffic:  %d rotations, %d sessions pinned, %d bytes in, %d bytes out\n", c.Rotations, c.SessionsPinned, c.BytesIn, c.BytesOut)
		for _, k := range c.Keys {
			line := fmt.Sprintf("  key %d  %s  %s  %s", k.Index, k.Fingerprint, k.Label, k.State)
			if k.Reason != "" {
				line += " (" + k.Reason + ")"
			}
			if t, err := time.Parse(time.RFC3339, k.CooldownUntil); err == nil && t.After(now) {
				line += ", until " + when.Until(t, now)
			}
			b.WriteString(termsafe.String(line) + "\n")
		}
	}
	if st.Error != "" {
		fmt.Fprintf(&b, "note:     %s\n", termsafe.String(st.Error))
	}
	b.WriteString(strings.Replace(st.logHint, "log: ", "log:      ", 1) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// byStatusText is " (200: 12, 429: 3)", statuses in order.
func byStatusText(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	codes := make([]string, 0, len(m))
	for k := range m {
		codes = append(codes, k)
	}
	slices.SortFunc(codes, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	parts := make([]string, len(codes))
	for i, k := range codes {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
