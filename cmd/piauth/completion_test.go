package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// completionFiles maps each shell to its committed script under completions/.
var completionFiles = map[string]string{
	"bash": "piauth.bash",
	"zsh":  "_piauth",
	"fish": "piauth.fish",
}

// generateCompletion runs `piauth completion SHELL` in-process.
func generateCompletion(t *testing.T, shell string) string {
	t.Helper()
	f, bufs := newTestFactory("", nil)
	code := run(context.Background(), f, []string{"piauth", "completion", shell})
	require.Equal(t, 0, code, bufs.Err.String())
	return bufs.Out.String()
}

// completionScriptFile writes the live tree's script for shell to a temp file.
func completionScriptFile(t *testing.T, shell string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), completionFiles[shell])
	require.NoError(t, os.WriteFile(path, []byte(generateCompletion(t, shell)), 0o644))
	return path
}

func TestCompletionUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no shell", []string{"completion"}, "completion wants a shell: bash, zsh, fish"},
		{"two shells", []string{"completion", "bash", "zsh"}, "completion wants a shell"},
		{"unknown shell", []string{"completion", "tcsh"}, `unsupported shell "tcsh" (want bash, zsh, fish)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", nil)
			assert.Equal(t, 2, run(context.Background(), f, append([]string{"piauth"}, tt.args...)))
			assert.Contains(t, bufs.Err.String(), tt.wantErr)
			assert.Empty(t, bufs.Out.String())
		})
	}
}

// The committed scripts must be what the current command tree generates.
func TestCompletionsCommittedUpToDate(t *testing.T) {
	for shell, file := range completionFiles {
		t.Run(shell, func(t *testing.T) {
			committed, err := os.ReadFile(filepath.Join("..", "..", "completions", file))
			require.NoError(t, err, "run scripts/gen-completions.sh")
			want := generateCompletion(t, shell)
			if want == string(committed) {
				return
			}
			wl, cl := strings.Split(want, "\n"), strings.Split(string(committed), "\n")
			i := 0
			for i < len(wl) && i < len(cl) && wl[i] == cl[i] {
				i++
			}
			t.Errorf("completions/%s is stale: run scripts/gen-completions.sh\n(first difference at line %d:\n  generated: %q\n  committed: %q)",
				file, i+1, lineAt(wl, i), lineAt(cl, i))
		})
	}
}

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of file>"
}

// A small tree exercising what the generator must honour: hidden commands and
// flags, aliases, value kinds and fixed choices.
func testCompletionApp() *cli.App {
	return &cli.App{
		Name:    "piauth",
		Version: "test",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "keyring", Usage: "`MODE`"},
			&cli.StringFlag{Name: "secret-flag", Hidden: true},
		},
		Commands: []*cli.Command{
			{Name: "ghost", Hidden: true},
			{Name: "pick", Aliases: []string{"p"}, Usage: "it's a pick", ArgsUsage: "red|green",
				Flags: []cli.Flag{
					&shapeFlag{StringFlag: &cli.StringFlag{Name: "shape", Aliases: []string{"s"}}},
					&cli.StringFlag{Name: "out", Usage: "write to `FILE`"},
					&cli.StringFlag{Name: "where", Usage: "in `DIR`"},
					&cli.IntFlag{Name: "count"},
					&cli.BoolFlag{Name: "dry-run"},
				},
			},
			{Name: "group", Subcommands: []*cli.Command{{Name: "leaf", ArgsUsage: "N"}}},
		},
	}
}

type shapeFlag struct{ *cli.StringFlag }

func (shapeFlag) Choices() []string { return []string{"round", "square"} }

func TestCompletionModel(t *testing.T) {
	m := completionModel(testCompletionApp())
	var paths []string
	m.walk(func(c *compCmd) { paths = append(paths, c.Path) })
	assert.Equal(t, []string{"", "pick", "group", "group leaf"}, paths, "hidden commands skipped")

	var root []string
	for _, f := range m.Flags {
		root = append(root, f.names()...)
	}
	assert.Equal(t, []string{"--keyring", "--help", "-h", "--version", "-v"}, root, "hidden flags skipped")
	assert.Equal(t, []string{"auto", "on", "off"}, m.Flags[0].Choices)

	pick := m.Subs[0]
	assert.Equal(t, []string{"red", "green"}, pick.Args)
	assert.Empty(t, m.Subs[1].Subs[0].Args, "an uppercase placeholder is not a choice")
	want := map[string]compValue{"shape": valueChoices, "out": valueFile, "where": valueDir, "count": valueAny, "dry-run": valueNone, "help": valueNone}
	for _, f := range pick.Flags {
		assert.Equal(t, want[f.Long[0]], f.Value, f.Long[0])
	}
	assert.Equal(t, []string{"round", "square"}, pick.Flags[0].Choices)
	assert.Equal(t, []string{"s"}, pick.Flags[0].Short)

	for _, shell := range completionShells() {
		a, err := completionScript(testCompletionApp(), shell)
		require.NoError(t, err)
		b, err := completionScript(testCompletionApp(), shell)
		require.NoError(t, err)
		assert.Equal(t, a, b, "%s output is deterministic", shell)
		assert.NotContains(t, a, "ghost")
		assert.NotContains(t, a, "secret-flag")
	}
}

// bashComplete completes line (the cursor at its end) with the bash script,
// in a real bash, and returns COMPREPLY.
func bashComplete(t *testing.T, script, line string) []string {
	t.Helper()
	const driver = `source "$1" || exit 1
read -ra COMP_WORDS <<<"$2"
[[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$2 COMP_POINT=${#2}
_piauth
[[ $(complete -p piauth) == "complete -F _piauth piauth" ]] || exit 3
printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "--norc", "--noprofile", "-c", driver, "bash", script, line).CombinedOutput()
	require.NoError(t, err, "bash: %s", out)
	if got := strings.Fields(string(out)); len(got) > 0 {
		return got
	}
	return nil
}

func TestCompletionBash(t *testing.T) {
	script := completionScriptFile(t, "bash")
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "agent"), 0o700))
	tests := []struct {
		line     string
		want     []string // exactly these
		contains []string // at least these
	}{
		{line: "piauth ke", want: []string{"key"}},
		{line: "piauth ", contains: []string{"key", "completion", "login", "status"}},
		{line: "piauth key ", want: []string{"add", "list", "use", "reset", "remove", "prune", "sync", "restore"}},
		{line: "piauth key r", want: []string{"reset", "remove", "restore"}},
		{line: "piauth key add --l", want: []string{"--label"}},
		{line: "piauth key add --", want: []string{"--stdin", "--label", "--help"}},
		{line: "piauth key ls --j", want: []string{"--json"}},
		{line: "piauth --keyring ", want: []string{"auto", "on", "off"}},
		{line: "piauth --keyring o", want: []string{"on", "off"}},
		{line: "piauth --keyring=o", want: []string{"--keyring=on", "--keyring=off"}},
		{line: "piauth --keyring = o", want: []string{"on", "off"}}, // '=' split off by COMP_WORDBREAKS
		{line: "piauth --keyring off key u", want: []string{"use"}},
		{line: "piauth --dir " + dir + "/ag", want: []string{dir + "/agent"}},
		{line: "piauth --dir " + dir + " --no-color key s", want: []string{"sync"}},
		{line: "piauth --no", want: []string{"--no-color"}},
		{line: "piauth completion ", want: []string{"bash", "zsh", "fish"}},
		{line: "piauth completion z", want: []string{"zsh"}},
		{line: "piauth key add --label ", want: nil}, // free text: nothing offered
		{line: "piauth key use ", want: nil},
		{line: "piauth nosuch ", want: nil},
		{line: "piauth completion bash ", want: nil},
		{line: "piauth key use 2 --", want: nil}, // flags end at the first argument
		{line: "piauth he", want: []string{"help"}},
		{line: "piauth help ", contains: []string{"key", "chat", "man", "completion"}},
		{line: "piauth help k", want: []string{"key"}},
		{line: "piauth ma", want: []string{"man"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got := bashComplete(t, script, tt.line)
			if tt.contains != nil {
				assert.Subset(t, got, tt.contains)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCompletionZsh(t *testing.T) {
	script := completionScriptFile(t, "zsh")
	for _, path := range []string{script, filepath.Join("..", "..", "completions", "_piauth")} {
		out, err := exec.Command("zsh", "-n", path).CombinedOutput()
		require.NoError(t, err, "zsh -n %s: %s", path, out)
	}
	// Drive _piauth in a real zsh outside the completion system: the builtins
	// that only work inside a completion widget are replaced by printers, so
	// what is checked is the command-path logic and the candidate lists.
	const driver = `compdef() { print -r -- "compdef:$*" }
source "$1" || exit 1
_describe() { local n=$argv[-1]; local -a arr; arr=("${(@P)n}"); arr=("${(@)arr%%:*}"); print -r -- "describe:${(j/,/)arr}" }
compadd() { [[ $1 == -- ]] && shift; print -r -- "compadd:${(j/,/)@}" }
compset() { : }
_files() { print files }
_directories() { print dirs }
_message() { print message }
words=(${(z)2})
[[ $2 == *" " ]] && words+=("")
CURRENT=${#words}
_piauth || print -r -- "no matches"`
	tests := []struct{ line, want string }{
		{"piauth ke", "describe:login"},
		{"piauth key r", "describe:add,list,use,reset,remove,prune,sync,restore"},
		{"piauth key add --l", "describe:--stdin,--label,--help,-h"},
		{"piauth --dir /tmp key ", "describe:add,list,use,reset,remove,prune,sync,restore"},
		{"piauth --keyring ", "compadd:auto,on,off"},
		{"piauth --keyring=o", "compadd:auto,on,off"},
		{"piauth completion ", "compadd:bash,zsh,fish"},
		{"piauth --dir /t", "dirs"},
		{"piauth key add --label ", "message"},
		{"piauth completion bash ", "no matches"}, // nothing offered after an argument
		{"piauth help ", "compadd:login,logout,token,status,key,chat,"},
		{"piauth nosuch ", "no matches"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			out, err := exec.Command("zsh", "-f", "-c", driver, "zsh", script, tt.line).CombinedOutput()
			require.NoError(t, err, "zsh: %s", out)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			assert.Equal(t, "compdef:_piauth piauth", lines[0], "sourcing registers the function")
			assert.Contains(t, lines[len(lines)-1], tt.want)
		})
	}
}

// The zsh script inside zsh's real completion system: an interactive zsh on
// a pseudo-terminal (zsh/zpty) completes "piauth key r<Tab><Tab>".
func TestCompletionZshInteractive(t *testing.T) {
	script := completionScriptFile(t, "zsh")
	const driver = `zmodload zsh/zpty || exit 2
zpty z 'zsh -f -i'
zpty -w z "PS1='> '; autoload -Uz compinit; compinit -u -D; source ${(q)1}"
zpty -w -n z $'piauth key r\t\t'
zpty -r z out '*restore*-- rebuild*' || exit 3
zpty -d z
print -r -- "$out"`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "zsh", "-f", "-c", driver, "zsh", script).CombinedOutput()
	require.NoError(t, err, "zsh: %s", out)
	for _, want := range []string{"remove", "reset", "restore", "-- rebuild", "-- make key 1 active"} {
		assert.Contains(t, string(out), want)
	}
	assert.NotContains(t, string(out), "sync")
}

func TestCompletionFish(t *testing.T) {
	script := completionScriptFile(t, "fish")
	for _, path := range []string{script, filepath.Join("..", "..", "completions", "piauth.fish")} {
		out, err := exec.Command("fish", "--no-config", "-n", path).CombinedOutput()
		require.NoError(t, err, "fish -n %s: %s", path, out)
	}
	tests := []struct {
		line     string
		want     []string
		contains []string
	}{
		{line: "piauth ke", want: []string{"key"}},
		{line: "piauth ", contains: []string{"key", "completion", "login"}},
		{line: "piauth key r", want: []string{"remove", "reset", "restore"}},
		{line: "piauth key add --l", want: []string{"--label"}},
		{line: "piauth --keyring ", want: []string{"auto", "off", "on"}},
		{line: "piauth --keyring=o", want: []string{"--keyring=off", "--keyring=on"}},
		{line: "piauth --dir /tmp key ", want: []string{"add", "list", "prune", "remove", "reset", "restore", "sync", "use"}},
		{line: "piauth completion ", want: []string{"bash", "fish", "zsh"}},
		{line: "piauth key ls --", want: []string{"--help", "--json"}},
		{line: "piauth completion bash ", want: nil},
		{line: "piauth nosuch ", want: nil},
		{line: "piauth help k", want: []string{"key"}},
		{line: "piauth key remove 2 --y", want: nil}, // flags end at the first argument
		{line: "piauth key remove --y", want: []string{"--yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cmd := exec.Command("fish", "--no-config", "-c", `source $argv[1]; and complete -C"$argv[2]"`, script, tt.line)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "fish: %s", stderr.String())
			require.Empty(t, stderr.String())
			var got []string
			for line := range strings.Lines(string(out)) {
				cand, _, _ := strings.Cut(strings.TrimRight(line, "\n"), "\t")
				got = append(got, cand)
			}
			if tt.contains != nil {
				assert.Subset(t, got, tt.contains)
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// scripts/install.sh installs the binary, the three completion files and the
// man page under PREFIX and is idempotent; it builds the binary as a user
// would, with the script's own go build.
func TestInstallScript(t *testing.T) {
	prefix := t.TempDir()
	env := append(os.Environ(), "PIAUTH_VERSION=9.9.9-test")
	install := func() string {
		cmd := exec.Command(filepath.Join("..", "..", "scripts", "install.sh"), prefix)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "install.sh: %s", out)
		return string(out)
	}
	files := []string{
		"bin/piauth",
		"share/bash-completion/completions/piauth",
		"share/zsh/site-functions/_piauth",
		"share/fish/vendor_completions.d/piauth.fish",
		"share/man/man1/piauth.1",
	}
	out := install()
	for _, f := range files {
		assert.Contains(t, out, "installed "+filepath.Join(prefix, f))
		assert.FileExists(t, filepath.Join(prefix, f))
	}
	bin := filepath.Join(prefix, "bin", "piauth")
	info, err := os.Stat(bin)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
	v, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	assert.Equal(t, "piauth version 9.9.9-test\n", string(v))
	bash, err := os.ReadFile(filepath.Join(prefix, files[1]))
	require.NoError(t, err)
	assert.Equal(t, generateCompletion(t, "bash"), string(bash))
	man, err := os.ReadFile(filepath.Join(prefix, "share/man/man1/piauth.1"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(man), ".nh\n.TH piauth 1"), "the man page")

	out = install()
	for _, f := range files {
		assert.Contains(t, out, "unchanged "+filepath.Join(prefix, f), "second run changes nothing")
	}
}
