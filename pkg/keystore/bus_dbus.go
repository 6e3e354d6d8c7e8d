//go:build unix && !darwin && !ios

package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// noSessionBus returns why go-keyring must not be asked (it would start a
// dbus-daemon, which starts a gnome-keyring-daemon, and both outlive the
// command), or "" when a session bus can be found without launching one:
// DBUS_SESSION_BUS_ADDRESS is set (and not "autolaunch:"), or the bus socket
// godbus looks for (/run/user/UID/bus or /run/user/UID/dbus-session) exists.
// A socket at $XDG_RUNTIME_DIR/bus elsewhere is named in the reason: godbus
// would not find it by itself.
func noSessionBus(getenv func(string) string) string {
	return noSessionBusIn(getenv, "/run/user/"+strconv.Itoa(os.Getuid()))
}

// noSessionBusIn is noSessionBus with godbus's runtime dir given (tests).
func noSessionBusIn(getenv func(string) string, run string) string {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return ""
	}
	for _, name := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(filepath.Join(run, name)); err == nil {
			return ""
		}
	}
	if x := getenv("XDG_RUNTIME_DIR"); x != "" && filepath.Clean(x) != run {
		bus := filepath.Join(x, "bus")
		if fi, err := os.Stat(bus); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return fmt.Sprintf("no D-Bus session bus in DBUS_SESSION_BUS_ADDRESS; export DBUS_SESSION_BUS_ADDRESS=unix:path=%s to use %s", bus, bus)
		}
	}
	return "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus; piauth never starts one"
}

// firstInSession reports whether this is the first call for name in the
// caller's session (getsid), creating a marker in dir. Markers of sessions
// that are gone are removed. With no usable dir it always reports true.
func firstInSession(dir, name string) bool {
	if dir == "" {
		return true
	}
	sid := os.Getppid() // the parent shell, when the session id is unknown
	if r, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, 0, 0, 0); errno == 0 {
		sid = int(r)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return true
	}
	prefix := name + ".session-"
	f, err := os.OpenFile(filepath.Join(dir, prefix+strconv.Itoa(sid)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false
	}
	if err != nil {
		return true
	}
	_ = f.Close()
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			other, ok := strings.CutPrefix(e.Name(), prefix)
			n, err := strconv.Atoi(other)
			if ok && err == nil && n != sid && errors.Is(syscall.Kill(n, 0), syscall.ESRCH) {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return true
}
