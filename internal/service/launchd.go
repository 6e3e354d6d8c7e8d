package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// LogFileName is the file in the launchd log dir that gets the proxy's
// stdout and stderr.
const LogFileName = "proxy.log"

// RenderPlist returns the launchd agent running spec: started at login
// (RunAtLoad), started again when it exits unsuccessfully (KeepAlive
// SuccessfulExit=false), at most every 5 s (ThrottleInterval: launchd's
// restart delay and start limit), its stdout and stderr appended to
// logDir/proxy.log.
func RenderPlist(spec Spec, logDir string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by "piauth proxy install"; "piauth proxy uninstall" removes it.
     It holds no key: the proxy reads its client key from proxy-key in
     piauth's state dir and the pool from the agent dir after its dir
     argument. -->
<plist version="1.0">
<dict>
`)
	key := func(k string) { b.WriteString("\t<key>" + xmlText(k) + "</key>\n") }
	str := func(indent, v string) { b.WriteString(indent + "<string>" + xmlText(v) + "</string>\n") }
	key("Label")
	str("\t", Label)
	key("ProgramArguments")
	b.WriteString("\t<array>\n")
	for _, a := range spec.Argv() {
		str("\t\t", a)
	}
	b.WriteString("\t</array>\n")
	if len(spec.Env) > 0 {
		key("EnvironmentVariables")
		b.WriteString("\t<dict>\n")
		for _, e := range spec.Env {
			b.WriteString("\t\t<key>" + xmlText(e.Name) + "</key>\n")
			str("\t\t", e.Value)
		}
		b.WriteString("\t</dict>\n")
	}
	log := filepath.Join(logDir, LogFileName)
	b.WriteString(`	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>ExitTimeOut</key>
	<integer>40</integer>
	<key>Umask</key>
	<integer>63</integer>
`)
	key("StandardOutPath")
	str("\t", log)
	key("StandardErrorPath")
	str("\t", log)
	b.WriteString("</dict>\n</plist>\n")
	return []byte(b.String())
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// parsePlist decodes an XML property list whose top value is a dict, into
// map[string]any (values: string, int64, bool, []any, map[string]any).
func parsePlist(data []byte) (map[string]any, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "plist" {
			v, err := plistValue(d, se)
			if err != nil {
				return nil, fmt.Errorf("plist: %w", err)
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, errors.New("plist: the top value is not a dict")
			}
			return m, nil
		}
	}
}

// plistValue decodes the value that se starts.
func plistValue(d *xml.Decoder, se xml.StartElement) (any, error) {
	switch se.Name.Local {
	case "string", "integer", "key":
		var s string
		if err := d.DecodeElement(&s, &se); err != nil {
			return nil, err
		}
		if se.Name.Local == "integer" {
			return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		}
		return s, nil
	case "true", "false":
		return se.Name.Local == "true", d.Skip()
	case "array", "dict":
		var items []any
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, err
			}
			if _, end := tok.(xml.EndElement); end {
				break
			}
			if child, ok := tok.(xml.StartElement); ok {
				v, err := plistValue(d, child)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
		}
		if se.Name.Local == "array" {
			return items, nil
		}
		if len(items)%2 != 0 {
			return nil, errors.New("dict: a key without a value")
		}
		m := make(map[string]any, len(items)/2)
		for i := 0; i < len(items); i += 2 {
			k, ok := items[i].(string)
			if !ok {
				return nil, errors.New("dict: a key that is not a string")
			}
			m[k] = items[i+1]
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported element <%s>", se.Name.Local)
}

// plistSpec reads ProgramArguments and EnvironmentVariables (none: empty)
// back from a plist.
func plistSpec(data []byte) (argv []string, env map[string]string, err error) {
	m, err := parsePlist(data)
	if err != nil {
		return nil, nil, err
	}
	arr, ok := m["ProgramArguments"].([]any)
	if !ok || len(arr) == 0 {
		return nil, nil, errors.New("no ProgramArguments array")
	}
	argv = make([]string, len(arr))
	for i, a := range arr {
		if argv[i], ok = a.(string); !ok {
			return nil, nil, errors.New("ProgramArguments holds a non-string")
		}
	}
	env = map[string]string{}
	vars, ok := m["EnvironmentVariables"]
	if !ok {
		return argv, env, nil
	}
	d, ok := vars.(map[string]any)
	if !ok {
		return nil, nil, errors.New("EnvironmentVariables is not a dict")
	}
	for k, v := range d {
		if env[k], ok = v.(string); !ok {
			return nil, nil, fmt.Errorf("EnvironmentVariables %s is not a string", k)
		}
	}
	return argv, env, nil
}

// Launchd is the user's launchd domain (gui/UID), driven with launchctl.
type Launchd struct {
	UID  int    // the user's id: the domain is gui/UID
	Path string // the plist
	Exec Runner // runs launchctl
}

var _ Manager = (*Launchd)(nil)

func (l *Launchd) domain() string  { return "gui/" + strconv.Itoa(l.UID) }
func (l *Launchd) service() string { return l.domain() + "/" + Label }

// Check asks launchd for the user's GUI domain (there is none over ssh
// without a login session).
func (l *Launchd) Check(ctx context.Context) error {
	if _, err := l.Exec(ctx, []string{"launchctl", "print", l.domain()}); err != nil {
		return fmt.Errorf("%w: launchd has no %s domain (%v); log in to the Mac's desktop first", ErrNoManager, l.domain(), err)
	}
	return nil
}

// State asks `launchctl print gui/UID/LABEL`: it fails for a service
// launchd has not loaded; its "state = running" and "pid = N" lines say the
// rest.
func (l *Launchd) State(ctx context.Context) (State, error) {
	out, err := l.Exec(ctx, []string{"launchctl", "print", l.service()})
	if errors.Is(err, exec.ErrNotFound) {
		return State{}, fmt.Errorf("%w: %v", ErrNoManager, err)
	}
	if err != nil {
		return State{}, nil // not loaded
	}
	st := State{Loaded: true}
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		switch {
		case !ok:
		case k == "state" && st.Detail == "":
			st.Detail = v
			st.Active = v == "running"
		case k == "pid" && st.PID == 0:
			st.PID, _ = strconv.Atoi(v)
		}
	}
	return st, nil
}

// StartCommands: bootout first when loaded (bootstrap refuses a loaded
// service), enable (undoes an earlier `launchctl disable`), bootstrap the
// plist into gui/UID, kickstart it.
func (l *Launchd) StartCommands(before State) [][]string {
	var cmds [][]string
	if before.Loaded {
		cmds = append(cmds, []string{"launchctl", "bootout", l.service()})
	}
	return append(cmds,
		[]string{"launchctl", "enable", l.service()},
		[]string{"launchctl", "bootstrap", l.domain(), l.Path},
		[]string{"launchctl", "kickstart", l.service()})
}

// StopCommands: bootout stops and unloads a loaded service; there is
// nothing to do for one launchd does not know.
func (l *Launchd) StopCommands(st State) [][]string {
	if !st.Loaded {
		return nil
	}
	return [][]string{{"launchctl", "bootout", l.service()}}
}

// RemovedCommands: launchd keeps nothing of a booted-out plist.
func (l *Launchd) RemovedCommands() [][]string { return nil }

// Run runs argv.
func (l *Launchd) Run(ctx context.Context, argv []string) error {
	_, err := l.Exec(ctx, argv)
	return err
}
