package main

import (
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…"
// (scripts/install.sh stamps `git describe`); otherwise `piauth --version`
// reads the module version and commit the go command recorded.
var version = "dev"

// appVersion is what `piauth --version` prints after "piauth version ".
func appVersion() string {
	info, _ := debug.ReadBuildInfo()
	return versionString(version, info)
}

// versionString is stamped when set, else the build info's main module
// version (a tag or pseudo-version with `go install`, `go build`) with the
// VCS commit: "v1.2.0 (commit 3f2a9c1b2d4e)", "… (commit 3f2a9c1b2d4e,
// modified)". Without either it is "dev".
func versionString(stamped string, info *debug.BuildInfo) string {
	if stamped != "" && stamped != "dev" {
		return stamped
	}
	v := "dev"
	if info == nil {
		return v
	}
	if mv := info.Main.Version; mv != "" && mv != "(devel)" {
		v = mv
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	var meta []string
	meta = append(meta, "commit "+rev[:min(len(rev), 12)])
	if modified {
		meta = append(meta, "modified")
	}
	return v + " (" + strings.Join(meta, ", ") + ")"
}
