package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// runOut runs piauth in-process and returns its exit code and stdout.
func runOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	f, bufs := newTestFactory("", nil)
	code := run(context.Background(), f, append([]string{"piauth"}, args...))
	return code, bufs.Out.String(), bufs.Err.String()
}

// `piauth help X` prints exactly what `piauth X --help` prints.
func TestHelpCommand(t *testing.T) {
	for _, path := range [][]string{nil, {"chat"}, {"key"}, {"key", "add"}, {"key", "rm"}, {"help"}} {
		t.Run(strings.Join(append([]string{"help"}, path...), " "), func(t *testing.T) {
			code, want, _ := runOut(t, append(path, "--help")...)
			require.Equal(t, 0, code)
			code, got, stderr := runOut(t, append([]string{"help"}, path...)...)
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, want, got)
			assert.Contains(t, got, "EXAMPLES:")
		})
	}
	code, out, _ := runOut(t, "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "help        show help for piauth or for a command", "listed with the commands")
	assert.Contains(t, out, "man         print the piauth(1) man page")
}

// Every command and subcommand has one or two examples, shown by --help.
func TestHelpExamplesEveryCommand(t *testing.T) {
	f, _ := newTestFactory("", nil)
	app := newApp(f)
	seen := map[string]bool{"": true}
	visitCommands(app.Commands, "", func(name string, c *cli.Command) {
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			ex := commandExamples[name]
			require.NotEmpty(t, ex, "commandExamples[%q] is missing", name)
			n := len(strings.Split(strings.TrimSpace(ex), "\n"))
			assert.True(t, n >= 1 && n <= 2, "%d examples", n)
			code, out, stderr := runOut(t, append(strings.Fields(name), "--help")...)
			require.Equal(t, 0, code, stderr)
			assert.Contains(t, out, "\nEXAMPLES:\n")
			for line := range strings.Lines(ex) {
				assert.Contains(t, out, "   "+strings.TrimRight(line, "\n"))
			}
			assert.Equal(t, 1, strings.Count(out, "EXAMPLES:"), "one examples section")
			assert.True(t, strings.HasSuffix(out, "\n"))
		})
	})
	for name := range commandExamples {
		assert.True(t, seen[name], "commandExamples[%q]: no such command", name)
	}
	code, out, _ := runOut(t, "--help")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "EXAMPLES:\n   piauth login")
}

// No flag shows its default twice, and booleans do not show "(default: false)".
func TestHelpFlagDefaultsOnce(t *testing.T) {
	f, _ := newTestFactory("", nil)
	app := newApp(f)
	check := func(where string, flags []cli.Flag) {
		for _, fl := range flags {
			line := cli.FlagStringer(fl)
			assert.LessOrEqual(t, strings.Count(line, "default"), 1, "%s: %s", where, line)
			assert.NotContains(t, line, "(default: false)", "%s: %s", where, line)
		}
	}
	check("piauth", app.Flags)
	visitCommands(app.Commands, "", func(name string, c *cli.Command) { check(name, c.Flags) })

	_, out, _ := runOut(t, "login", "--help")
	assert.Contains(t, out, "(default: 53692)", "a default not in the usage is still shown")
	_, out, _ = runOut(t, "emulator", "--help")
	assert.Contains(t, out, "in SECONDS (default 28800)\n")
}

func TestVersionString(t *testing.T) {
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/piauth/piauth", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "3f2a9c1b2d4e5f60718293a4b5c6d7e8f9012345"
	tests := []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"ldflags win", "1.2.3", info("v1.0.0", "vcs.revision", rev), "1.2.3"},
		{"no build info", "dev", nil, "dev"},
		{"go test", "dev", info("(devel)"), "dev"},
		{"go install @tag", "dev", info("v1.2.0"), "v1.2.0"},
		{"go build in a clone", "dev", info("v0.0.0-20261128191121-3f2a9c1b2d4e", "vcs.revision", rev, "vcs.modified", "false"),
			"v0.0.0-20261128191121-3f2a9c1b2d4e (commit 3f2a9c1b2d4e)"},
		{"modified tree", "dev", info("v1.2.1-0.20261128191121-3f2a9c1b2d4e+dirty", "vcs.revision", rev, "vcs.modified", "true"),
			"v1.2.1-0.20261128191121-3f2a9c1b2d4e+dirty (commit 3f2a9c1b2d4e, modified)"},
		{"devel with commit", "dev", info("(devel)", "vcs.revision", rev), "dev (commit 3f2a9c1b2d4e)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, versionString(tt.stamped, tt.info))
		})
	}
}

// A binary built with plain `go build` in the repository reports the module
// version and the commit (-buildvcs=auto is go's default; it is spelled out
// because GOFLAGS may turn it off).
func TestVersionBinary(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	require.NoError(t, err, "the tests run in a git checkout")
	bin := filepath.Join(t.TempDir(), "piauth")
	build, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", build)
	out, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.NotEqual(t, "piauth version dev\n", string(out))
	assert.Regexp(t, `^piauth version v\S+ \(commit `+string(head[:12])+`(, modified)?\)\n$`, string(out))
}

func TestManPage(t *testing.T) {
	code, page, stderr := runOut(t, "man")
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(page, ".nh\n.TH piauth 1"), page[:min(len(page), 80)])
	f, _ := newTestFactory("", nil)
	visitCommands(newApp(f).Commands, "", func(name string, c *cli.Command) {
		assert.Contains(t, page, ".SS piauth "+name, "command %q documented", name)
	})
	for _, want := range []string{".SH GLOBAL OPTIONS", ".SH EXIT CODES", `\fB--keyring MODE\fP`, "piauth key add --label work", ".TP\n\\fB130\\fP\ninterrupted"} {
		assert.Contains(t, page, want)
	}
	_, again, _ := runOut(t, "man")
	assert.Equal(t, page, again, "deterministic")

	code, _, stderr = runOut(t, "man", "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "man takes no arguments")

	_, err := exec.LookPath("groff")
	require.NoError(t, err, "groff checks the page (scripts/test.sh installs it)")
	cmd := exec.Command("groff", "-k", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "groff: %s", out)
	assert.Empty(t, string(out), "groff warnings")
}
