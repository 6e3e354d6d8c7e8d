package service

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RenderUnit returns the systemd user unit running spec. It restarts the
// proxy when it fails (not when it is stopped), gives up after 5 failed
// starts in 5 minutes, sends stdout and stderr to the journal, and hardens
// the process only with settings a user instance applies without
// privileges (seccomp and prctl ones: NoNewPrivileges and the Restrict*
// family). PrivateTmp, ProtectSystem and ProtectHome are left out on
// purpose: in a user instance they need unprivileged user namespaces, which
// many kernels refuse, and then the unit would not start at all.
func RenderUnit(spec Spec) []byte {
	var b strings.Builder
	b.WriteString(`# Written by "piauth proxy install"; "piauth proxy uninstall" removes it.
# It holds no key: the proxy reads its client key from proxy-key in piauth's
# state dir and the pool from the agent dir named by --dir.
[Unit]
Description=piauth proxy: local Anthropic Messages endpoint with the key pool
Documentation=https://github.com/piauth/piauth#running-the-proxy-as-a-service
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=exec
`)
	b.WriteString("ExecStart=" + unitCommandLine(spec.Argv()) + "\n")
	for _, e := range spec.Env {
		b.WriteString("Environment=" + unitQuote(e.Name+"="+e.Value) + "\n")
	}
	b.WriteString(`Restart=on-failure
RestartSec=5s
# SIGTERM lets open streams finish (the proxy waits up to 30s).
KillSignal=SIGTERM
TimeoutStopSec=40s
StandardOutput=journal
StandardError=journal
SyslogIdentifier=piauth-proxy
UMask=0077
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
`)
	return []byte(b.String())
}

// unitCommandLine renders argv for ExecStart=.
func unitCommandLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = unitQuote(a)
	}
	return strings.Join(q, " ")
}

// unitQuote quotes one word of a unit file: specifiers (%) and variables ($)
// are doubled so systemd takes them literally, and a word with a space, a
// quote or a backslash is double-quoted with C escapes.
func unitQuote(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// unitSpec reads ExecStart= and the Environment= lines back from a unit
// written by RenderUnit (or edited in the same syntax). An Environment=
// line holds one or more NAME=VALUE words; a later assignment wins and an
// empty Environment= clears the ones before, as in systemd.
func unitSpec(data []byte) (argv []string, env map[string]string, err error) {
	env = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok && argv == nil {
			if argv, err = unitSplit(v); err != nil {
				return nil, nil, err
			}
			continue
		}
		v, ok := strings.CutPrefix(line, "Environment=")
		if !ok {
			continue
		}
		if v == "" {
			clear(env)
			continue
		}
		words, err := unitSplit(v)
		if err != nil {
			return nil, nil, err
		}
		for _, w := range words {
			if name, val, ok := strings.Cut(w, "="); ok && name != "" {
				env[name] = val
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if argv == nil {
		return nil, nil, errors.New("no ExecStart= line")
	}
	return argv, env, nil
}

// unitSplit splits a unit command line into words, undoing unitQuote.
func unitSplit(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '"':
			quoted = false
		case quoted && c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				cur.WriteByte('\n')
			case 't':
				cur.WriteByte('\t')
			default:
				cur.WriteByte(s[i])
			}
		case !quoted && c == '"':
			quoted, inWord = true, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case (c == '%' || c == '$') && i+1 < len(s) && s[i+1] == c:
			cur.WriteByte(c)
			inWord = true
			i++
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("ExecStart=: unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("ExecStart= is empty")
	}
	return words, nil
}

// Systemd is the user instance of systemd, driven with `systemctl --user`.
type Systemd struct {
	Unit string // UnitName unless a test runs its own
	Exec Runner // runs systemctl
}

var _ Manager = (*Systemd)(nil)

func (s *Systemd) ctl(args ...string) []string {
	return append([]string{"systemctl", "--user"}, args...)
}

// Check asks the user instance for its environment: it answers only when
// it runs and systemctl can reach it.
func (s *Systemd) Check(ctx context.Context) error {
	if _, err := s.Exec(ctx, s.ctl("show-environment")); err != nil {
		return fmt.Errorf("%w: no systemd user instance (systemctl --user: %v); containers and sessions without systemd have none", ErrNoManager, err)
	}
	return nil
}

// State asks systemctl --user show for the unit's load and active states.
func (s *Systemd) State(ctx context.Context) (State, error) {
	out, err := s.Exec(ctx, s.ctl("show", s.Unit, "--property=LoadState,ActiveState,SubState,MainPID"))
	if err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrNoManager, err)
	}
	props := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	st := State{
		Loaded: props["LoadState"] == "loaded",
		Active: props["ActiveState"] == "active",
		Detail: props["ActiveState"],
	}
	if sub := props["SubState"]; sub != "" && st.Detail != "" {
		st.Detail += " (" + sub + ")"
	}
	st.PID, _ = strconv.Atoi(props["MainPID"])
	return st, nil
}

// StartCommands: daemon-reload (read the new file), enable --now (start at
// login and now), and restart when it already ran (enable --now leaves a
// running service on its old command line).
func (s *Systemd) StartCommands(before State) [][]string {
	cmds := [][]string{s.ctl("daemon-reload"), s.ctl("enable", "--now", s.Unit)}
	if before.Active {
		cmds = append(cmds, s.ctl("restart", s.Unit))
	}
	return cmds
}

// StopCommands: disable --now (stop it and drop it from login), which works
// on an installed unit whatever its state.
func (s *Systemd) StopCommands(State) [][]string {
	return [][]string{s.ctl("disable", "--now", s.Unit)}
}

// RemovedCommands: daemon-reload, so systemd forgets the removed file.
func (s *Systemd) RemovedCommands() [][]string {
	return [][]string{s.ctl("daemon-reload")}
}

// Run runs argv.
func (s *Systemd) Run(ctx context.Context, argv []string) error {
	_, err := s.Exec(ctx, argv)
	return err
}
