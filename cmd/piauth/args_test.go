package main

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlagOrderNormalize(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		want    string
		wantErr string
	}{
		{name: "flags first unchanged", args: "chat --json hi", want: "chat --json hi"},
		{name: "bool flag after the prompt", args: "chat hi there --json", want: "chat --json hi there"},
		{name: "value flag after the prompt takes its value", args: "chat hi --max-tokens abc", want: "chat --max-tokens abc hi"},
		{name: "inline value", args: "chat hi --max-tokens=12 -m opus", want: "chat --max-tokens=12 -m opus hi"},
		{name: "a value that looks like a command", args: "--dir key status", want: "--dir key status"},
		{name: "a value that looks like a flag", args: "chat hi -s --json", want: "chat -s --json hi"},
		{name: "global flag after the subcommand", args: "key list --no-color", want: "--no-color key list"},
		{name: "global value flag after the argument", args: "key use 2 --dir /tmp/a --keyring=off", want: "--dir /tmp/a --keyring=off key use 2"},
		{name: "own flag wins over a global of that name", args: "key add --label x --stdin", want: "key add --label x --stdin"},
		{name: "double dash ends flags", args: "chat -- --json", want: "chat -- --json"},
		{name: "double dash after words", args: "chat say -- --json -m x", want: "chat -- say --json -m x"},
		{name: "flags before double dash still move", args: "chat say --stream -- --json", want: "chat --stream -- say --json"},
		{name: "help flag after the argument", args: "key use 2 --help", want: "key use --help"},
		{name: "value flag without its value", args: "chat hi -m", wantErr: "flag needs an argument: -m"},
		{name: "unknown flag stays with the command", args: "key use 2 --bogus", want: "key use --bogus 2"},
		{name: "lone dash is an argument", args: "chat - --json", want: "chat --json -"},
		{name: "words after an argument are not commands", args: "frob key list", want: "frob key list"},
		{name: "alias", args: "key ls --json", want: "key ls --json"},
		{name: "help", args: "help", want: "--help"},
		{name: "help command", args: "help chat", want: "chat --help"},
		{name: "help subcommand", args: "--no-color help key add", want: "--no-color key add --help"},
		{name: "help alias", args: "help key rm", want: "key rm --help"},
		{name: "help unknown command", args: "help chta", wantErr: `unknown command "chta": did you mean "chat"?`},
		{name: "help unknown subcommand", args: "help key ad", wantErr: `unknown command "ad" for "key": did you mean "add"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newTestFactory("", nil)
			got, err := normalizeArgs(newApp(f), append([]string{"piauth"}, strings.Fields(tt.args)...))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Equal(t, exitUsage, exitCode(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, append([]string{"piauth"}, strings.Fields(tt.want)...), got)
		})
	}
}

// Flags after the prompt reach chat; "--" makes them prompt text.
func TestFlagOrderChat(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		wantUser string
		ndjson   bool
		wantErr  string
	}{
		{name: "json after the prompt", args: []string{"hi", "--json"}, wantUser: "hi", ndjson: true},
		{name: "json between words", args: []string{"say", "--json", "hello"}, wantUser: "say hello", ndjson: true},
		{name: "double dash keeps flags as text", args: []string{"--", "--json"}, wantUser: "--json"},
		{name: "double dash after words", args: []string{"say", "--", "-m", "x"}, wantUser: "say -m x"},
		{name: "bad max-tokens after the prompt", args: []string{"hi", "--max-tokens", "abc"}, code: 2, wantErr: "max-tokens"},
		{name: "unknown flag after the prompt", args: []string{"hi", "--bogus"}, code: 2, wantErr: "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newChatHarness(t, chatScenario)
			h.login(chatToken("plain"))
			res := h.run(context.Background(), "", nil, tt.args...)
			require.Equal(t, tt.code, res.code, "stderr: %s", res.err)
			assert.Contains(t, res.err, tt.wantErr)
			reqs := h.requests()
			if tt.code != 0 {
				assert.Empty(t, reqs, "nothing sent")
				assert.Empty(t, res.out)
				return
			}
			require.Len(t, reqs, 1)
			require.Len(t, reqs[0].Messages, 1)
			var content string
			require.NoError(t, json.Unmarshal(reqs[0].Messages[0].Content, &content))
			assert.Equal(t, tt.wantUser, content)
			if !tt.ndjson {
				assert.Equal(t, wantText+"\n", res.out)
				return
			}
			sc := bufio.NewScanner(strings.NewReader(res.out))
			var last map[string]any
			for sc.Scan() {
				require.NoError(t, json.Unmarshal(sc.Bytes(), &last), "NDJSON line %q", sc.Text())
				assert.Contains(t, last, "type")
			}
			assert.Equal(t, "message", last["type"])
		})
	}
}

// Global flags work after the subcommand and its arguments.
func TestFlagOrderGlobalAfterSubcommand(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := testKey("oat01", 1), testKey("api03", 2)
	writePoolFile(t, dir, []string{k1, k2}, nil)

	f, bufs := newTestFactory("", nil)
	f.IO.OutTTY, f.IO.ErrTTY = true, true
	code := run(context.Background(), f, []string{"piauth", "key", "list", "--json", "--no-color", "--dir", dir, "--keyring", "off"})
	require.Equal(t, 0, code, bufs.Err.String())
	assert.Len(t, decodeList(t, bufs.Out.String()), 2, "read the pool of --dir")
	assert.False(t, f.IO.ColorOut(), "--no-color applied")

	r := piauthRun{dir: t.TempDir()}.run(t, "key", "use", "2", "--dir", dir)
	assert.Equal(t, 0, r.code, r.err)
	assert.Contains(t, r.out, "using key 2/2")
	assert.Equal(t, 1, readPool(t, dir).Active, "the last --dir wins, as before the subcommand")
}

func TestFlagOrderExitCodes(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
		wantOut string
	}{
		{name: "help", args: []string{"help"}, code: 0, wantOut: "COMMANDS:"},
		{name: "help command", args: []string{"help", "key", "use"}, code: 0, wantOut: "piauth key use"},
		{name: "help unknown", args: []string{"help", "nosuch"}, code: 2, wantErr: `unknown command "nosuch"`},
		{name: "help flag after argument", args: []string{"key", "use", "3", "--help"}, code: 0, wantOut: "piauth key use"},
		{name: "version", args: []string{"--version"}, code: 0, wantOut: "piauth version "},
		{name: "mistyped command", args: []string{"stauts"}, code: 2, wantErr: `unknown command "stauts": did you mean "status"?`},
		{name: "mistyped subcommand", args: []string{"key", "lst"}, code: 2, wantErr: `unknown command "lst" for "key": did you mean "list"?`},
		{name: "nothing close", args: []string{"frobnicate"}, code: 2, wantErr: `unknown command "frobnicate" (see 'piauth --help')`},
		{name: "unknown flag after argument", args: []string{"key", "use", "1", "--bogus"}, code: 2, wantErr: "flag provided but not defined: -bogus"},
		{name: "global flag value missing at the end", args: []string{"key", "list", "--dir"}, code: 2, wantErr: "flag needs an argument: --dir"},
		{name: "bad global after subcommand", args: []string{"key", "list", "--keyring", "maybe"}, code: 2, wantErr: "--keyring must be auto, on or off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, bufs := newTestFactory("", nil)
			code := run(context.Background(), f, append([]string{"piauth"}, tt.args...))
			assert.Equal(t, tt.code, code, "stderr: %s", bufs.Err)
			assert.Contains(t, bufs.Err.String(), tt.wantErr)
			assert.Contains(t, bufs.Out.String(), tt.wantOut)
		})
	}
}

func TestSuggestCommand(t *testing.T) {
	f, _ := newTestFactory("", nil)
	cmds := newApp(f).Commands
	for word, want := range map[string]string{
		"stauts": "status", "login": "login", "logni": "login", "tokn": "token", "comp": "completion",
		"ky": "key", "Chat": "chat", "emu": "emulator", "xyzzy": "", "k": "key",
	} {
		assert.Equal(t, want, suggestCommand(word, cmds), word)
	}
}
