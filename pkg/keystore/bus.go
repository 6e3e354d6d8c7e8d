package keystore

import (
	"fmt"
	"path/filepath"
)

// noBusWarning is the once-per-session warning when there is no D-Bus session
// bus; configPath names the file that silences it for good.
func noBusWarning(reason, configPath string) string {
	return fmt.Sprintf("piauth: warning: OS keyring unavailable (%s); using files only. "+
		"Said once per session; to turn the keyring off for good, put {\"keyring\": \"off\"} in %s (or set PIAUTH_KEYRING=off)\n",
		reason, configPath)
}

// warnNoBus writes the no-bus warning unless this shell session was already
// told (a marker file under $XDG_RUNTIME_DIR/piauth, else the state dir).
func (s *Store) warnNoBus() {
	cfg := "~/.config/piauth/" + ConfigFileName
	if dir, err := ResolveConfigDir(s.getenv); err == nil {
		cfg = filepath.Join(dir, ConfigFileName)
	}
	if !firstInSession(s.markerDir(), "keyring-nobus") {
		return
	}
	fmt.Fprint(s.warn, noBusWarning(s.krDown, cfg))
}

// markerDir is where once-per-session markers live: $XDG_RUNTIME_DIR/piauth
// (a tmpfs emptied at logout) when set, else piauth's state dir; "" when
// neither can be found (then every command warns).
func (s *Store) markerDir() string {
	if d := s.getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "piauth")
	}
	d, err := ResolveStateDir(s.getenv)
	if err != nil {
		return ""
	}
	return d
}
